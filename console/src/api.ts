// The only module that talks to the service: /api/v1 with the bearer token and X-Tenant-Id.

export const API_BASE: string = (import.meta.env.VITE_API_BASE as string | undefined) ?? "";

/** An error the API answered ({timestamp, status, error, message, path}) or a network failure. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface Session {
  token: string;
  tenant: string;
}

let current: Session | null = null;
let onUnauthorized: (message: string) => void = () => {};

export function setSession(session: Session | null): void {
  current = session;
}

export function setUnauthorizedHandler(handler: (message: string) => void): void {
  onUnauthorized = handler;
}

function headers(json: boolean): Record<string, string> {
  const out: Record<string, string> = { Accept: "application/json" };
  if (current) {
    out.Authorization = `Bearer ${current.token}`;
    out["X-Tenant-Id"] = current.tenant;
  }
  if (json) out["Content-Type"] = "application/json";
  return out;
}

async function errorFrom(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText || "error"}`;
  try {
    const body = (await response.json()) as { message?: unknown };
    if (typeof body.message === "string" && body.message) message = body.message;
  } catch {
    // not JSON (a proxy's page): keep the status line
  }
  return new ApiError(message, response.status);
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${API_BASE}/api/v1${path}`, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError("The service cannot be reached", 0);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401) onUnauthorized(error.message);
    throw error;
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export const get = <T>(path: string) => request<T>("GET", path);
export const post = <T>(path: string, body?: unknown) => request<T>("POST", path, body);
export const put = <T>(path: string, body?: unknown) => request<T>("PUT", path, body);
export const del = (path: string) => request<void>("DELETE", path);

/** Multipart upload through XMLHttpRequest, which (unlike fetch) reports upload progress. */
export function upload<T>(
  path: string,
  file: File,
  onProgress: (loaded: number, total: number) => void,
): { promise: Promise<T>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<T>((resolve, reject) => {
    xhr.open("POST", `${API_BASE}/api/v1${path}`);
    for (const [name, value] of Object.entries(headers(false))) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    };
    xhr.onerror = () => reject(new ApiError("The upload failed: the service cannot be reached", 0));
    xhr.onabort = () => reject(new ApiError("The upload was cancelled", 0));
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body as T);
        return;
      }
      const message =
        body && typeof (body as { message?: unknown }).message === "string"
          ? (body as { message: string }).message
          : `${xhr.status} ${xhr.statusText || "error"}`;
      if (xhr.status === 401) onUnauthorized(message);
      reject(new ApiError(message, xhr.status));
    };
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

// ---- wire types (openapi.yaml components) ----

export interface Me {
  subject: string;
  tenant: string;
  permissions: string[];
}

export interface Source {
  id: string;
  name: string;
  description: string | null;
  connectorType: string;
  status: string;
  statusMessage?: string | null;
  lastTestedAt: string | null;
  createdAt: string;
  updatedAt: string;
  connectionConfig?: Record<string, unknown>;
}

export interface ConnectorSpec {
  connectorType: string;
  title: string;
  engines: string[];
  connectionSpecification: JsonSchema;
}

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  order?: number;
  airbyte_secret?: boolean;
  multiline?: boolean;
  minimum?: number;
  maximum?: number;
  examples?: unknown[];
  pattern?: string;
  format?: string;
}

export interface Column {
  name: string;
  type: string;
  nullable: boolean;
  sampleValues: string[];
}

export interface Stream {
  name: string;
  columns: Column[];
  supportedSyncModes: string[];
  primaryKey: string[][];
  cursorField: string[];
}

export interface Connection {
  id: string;
  sourceId: string;
  sourceName: string;
  name: string;
  destinationType: string;
  namespace: string | null;
  syncSchedule: string | null;
  syncMode: string;
  selectedStreams: string[] | null;
  status: string;
  lastSyncAt: string | null;
  nextRunAt: string | null;
  createdAt: string;
  updatedAt: string;
  // lifecycle fields: present when the service has pause/resume (POST /connections/{id}/pause|resume)
  pausedAt?: string | null;
  statusReason?: string | null;
}

export interface Sync {
  id: string;
  connectionId: string;
  connectionName: string;
  status: string;
  trigger: string;
  recordsSynced: number | null;
  bytesSynced: number | null;
  startedAt: string | null;
  completedAt: string | null;
  durationMs: number | null;
  errorMessage?: string | null;
  createdAt?: string | null;
}

export interface SyncPage {
  content: Sync[];
  totalElements: number;
  totalPages: number;
  number: number;
  size: number;
}

export interface FileJob {
  id: string;
  fileName: string;
  fileSize: number;
  fileFormat: string;
  status: string;
  targetTableName?: string | null;
  targetSchema?: string | null;
  columnMappings?: Record<string, string> | null;
  columnTypes?: Record<string, string> | null;
  mode?: string;
  totalRows?: number | null;
  recordsImported?: number | null;
  errorMessage?: string | null;
  createdAt: string;
  completedAt?: string | null;
}

export interface Preview {
  fileId: string;
  fileName: string;
  columns: Column[];
  previewRows: Record<string, unknown>[];
  totalRows: number;
  inferredTypes: Record<string, string>;
}

export interface ImportStatus {
  id: string;
  fileName: string;
  status: string;
  recordsImported?: number | null;
  totalRows?: number | null;
  percentage?: number | null;
  errorMessage?: string | null;
  startedAt?: string | null;
  completedAt?: string | null;
}

export interface TableSummary {
  namespace: string;
  name: string;
  rowCount: number;
  lastUpdated: string | null;
}

export interface Snapshot {
  snapshotId: string;
  committedAt: string;
  operation: string | null;
  addedRecords: number | null;
  totalRecords: number | null;
  syncId: string | null;
  importId: string | null;
  jobId: string | null;
}

export interface TableDetail extends TableSummary {
  columns: { name: string; type: string; nullable: boolean }[];
  snapshots: Snapshot[];
}

export interface TableRows {
  namespace: string;
  name: string;
  columns: string[];
  rows: Record<string, unknown>[];
}

export const SYNC_ACTIVE = new Set(["PENDING", "RUNNING"]);
export const FILE_TYPES = ["INTEGER", "DECIMAL", "STRING", "BOOLEAN", "DATE", "TIMESTAMP"];
export const SYNC_MODES = ["FULL_REFRESH", "INCREMENTAL", "CDC"];
