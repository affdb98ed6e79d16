import { useEffect, useRef, useState } from "preact/hooks";
import {
  del,
  FILE_TYPES,
  get,
  post,
  put,
  upload,
  type FileJob,
  type ImportStatus,
  type Preview,
} from "../api";
import { useAccount } from "../App";
import { bytes, cell, count, when } from "../format";
import { href, navigate } from "../router";
import { ActionButton, ErrorBox, Loading, messageOf, Page, Status, useLoad, usePoll } from "../ui";

const CONFIGURABLE = new Set(["UPLOADED", "CONFIGURED", "FAILED"]);

/** The override choices, plus the inferred or stored type when it is a form the list lacks (DECIMAL(p,s)). */
function typeChoices(inferred: string, chosen: string | undefined): string[] {
  const extra = [inferred, chosen].filter((t): t is string => !!t && !FILE_TYPES.includes(t));
  return [...FILE_TYPES, ...new Set(extra)];
}

function tableNameFor(fileName: string): string {
  const base = fileName.replace(/\.[^.]+$/, "").toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^_+|_+$/g, "");
  const name = base || "imported";
  return /^[0-9]/.test(name) ? `t_${name}` : name;
}

function Uploader() {
  const [progress, setProgress] = useState<{ loaded: number; total: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [over, setOver] = useState(false);
  const abort = useRef<(() => void) | null>(null);

  const send = async (file: File) => {
    setError(null);
    setProgress({ loaded: 0, total: file.size });
    const job = upload<FileJob>("/files/upload", file, (loaded, total) => setProgress({ loaded, total }));
    abort.current = job.abort;
    try {
      const created = await job.promise;
      navigate(`/files/${created.id}`);
    } catch (e) {
      setError(messageOf(e));
      setProgress(null);
    } finally {
      abort.current = null;
    }
  };

  return (
    <div
      class={`dropzone${over ? " over" : ""}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        const file = e.dataTransfer?.files?.[0];
        if (file) void send(file);
      }}
    >
      <p>Drop a file here (csv, xlsx, xls, parquet, json, jsonl, avro), or</p>
      <label for="file-input" class="button primary">
        Choose a file
      </label>
      <input
        id="file-input"
        class="visually-hidden"
        type="file"
        aria-label="File to upload"
        accept=".csv,.xlsx,.xls,.parquet,.json,.jsonl,.ndjson,.avro"
        onChange={(e) => {
          const input = e.target as HTMLInputElement;
          const file = input.files?.[0];
          if (file) void send(file);
          input.value = "";
        }}
      />
      {progress ? (
        <div class="upload-progress">
          <progress aria-label="Upload progress" max={progress.total || 1} value={progress.loaded} />
          <span>
            {bytes(progress.loaded)} of {bytes(progress.total)}
          </span>
          {abort.current ? (
            <button type="button" class="plain" onClick={() => abort.current?.()}>
              Cancel upload
            </button>
          ) : null}
        </div>
      ) : null}
      <ErrorBox message={error} />
    </div>
  );
}

export function FilesPage() {
  const { canManage } = useAccount();
  const files = useLoad(() => get<FileJob[]>("/files"), []);
  return (
    <Page title="Files">
      {canManage ? <Uploader /> : null}
      <h2>Uploaded files</h2>
      <ErrorBox message={files.error} />
      {files.data === undefined ? (
        files.error ? null : <Loading what="files" />
      ) : files.data.length === 0 ? (
        <p class="muted">No files uploaded yet.</p>
      ) : (
        <div class="table-wrap">
          <table aria-label="Uploaded files">
            <thead>
              <tr>
                <th scope="col">File</th>
                <th scope="col">Format</th>
                <th scope="col">Size</th>
                <th scope="col">Status</th>
                <th scope="col">Table</th>
                <th scope="col">Rows</th>
                <th scope="col">Uploaded</th>
              </tr>
            </thead>
            <tbody>
              {files.data.map((f) => (
                <tr key={f.id}>
                  <td>
                    <a href={href(`/files/${f.id}`)}>{f.fileName}</a>
                  </td>
                  <td>{f.fileFormat}</td>
                  <td class="num">{bytes(f.fileSize)}</td>
                  <td>
                    <Status value={f.status} />
                  </td>
                  <td>{f.targetTableName ? `${f.targetSchema ?? "default"}.${f.targetTableName}` : "-"}</td>
                  <td class="num">{count(f.recordsImported)}</td>
                  <td>{when(f.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Page>
  );
}

function ImportProgress({ id, onDone }: { id: string; onDone: () => void }) {
  const status = useLoad(() => get<ImportStatus>(`/files/${id}/status`), [id]);
  const s = status.data;
  const running = !s || s.status === "IMPORTING";
  usePoll(running, 500, () => status.reload());
  useEffect(() => {
    if (s && !running) onDone();
  }, [s?.status]);
  if (!s) return <ErrorBox message={status.error} />;
  return (
    <div class="import-progress" aria-live="polite">
      <p>
        Import: <Status value={s.status} />
        {s.recordsImported !== null && s.recordsImported !== undefined ? ` ${count(s.recordsImported)} rows` : ""}
        {s.totalRows ? ` of ${count(s.totalRows)}` : ""}
      </p>
      {running ? (
        <progress
          aria-label="Import progress"
          max={100}
          value={s.percentage ?? undefined}
        />
      ) : null}
      {s.status === "FAILED" && s.errorMessage ? (
        <div class="error" role="alert">
          Import failed: {s.errorMessage}
        </div>
      ) : null}
    </div>
  );
}

export function FileDetailPage({ id }: { id: string }) {
  const { canManage } = useAccount();
  const file = useLoad(() => get<FileJob>(`/files/${id}`), [id]);
  const f = file.data;
  const configurable = f !== undefined && CONFIGURABLE.has(f.status) && canManage;
  const preview = useLoad(
    () => (f ? get<Preview>(`/files/${id}/preview?rows=20`) : Promise.resolve(undefined)),
    [id, f?.id],
  );
  const [names, setNames] = useState<Record<string, string>>({});
  const [types, setTypes] = useState<Record<string, string>>({});
  const [table, setTable] = useState("");
  const [namespace, setNamespace] = useState("default");
  const [mode, setMode] = useState("append");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!f) return;
    setTable(f.targetTableName ?? tableNameFor(f.fileName));
    setNamespace(f.targetSchema ?? "default");
    setMode(f.mode ?? "append");
  }, [f?.id]);
  useEffect(() => {
    const p = preview.data;
    if (!p) return;
    setNames(Object.fromEntries(p.columns.map((c) => [c.name, f?.columnMappings?.[c.name] ?? c.name])));
    setTypes(Object.fromEntries(p.columns.map((c) => [c.name, f?.columnTypes?.[c.name] ?? c.type])));
  }, [preview.data]);

  if (!f) {
    return (
      <Page title="File">
        <ErrorBox message={file.error} />
        {file.error ? null : <Loading what="the file" />}
      </Page>
    );
  }
  const p = preview.data;

  const startImport = async (e: Event) => {
    e.preventDefault();
    if (!p) return;
    setBusy(true);
    setError(null);
    try {
      const columnMappings: Record<string, string> = {};
      const columnTypes: Record<string, string> = {};
      for (const c of p.columns) {
        const target = (names[c.name] ?? c.name).trim();
        if (target && target !== c.name) columnMappings[c.name] = target;
        if (types[c.name] && types[c.name] !== c.type) columnTypes[c.name] = types[c.name]!;
      }
      await put<FileJob>(`/files/${id}/schema`, {
        targetTableName: table.trim(),
        targetSchema: namespace.trim() || null,
        columnMappings,
        columnTypes,
        mode,
      });
      await post(`/files/${id}/import`);
      await file.reload();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const target = f.targetTableName ? { ns: f.targetSchema ?? "default", name: f.targetTableName } : null;
  return (
    <Page
      title={`File ${f.fileName}`}
      actions={
        canManage && f.status !== "IMPORTING" ? (
          <ActionButton
            label="Delete file"
            kind="danger"
            confirm={`Delete the upload ${f.fileName}? Imported tables stay.`}
            action={async () => {
              await del(`/files/${id}`);
              navigate("/files");
            }}
            onError={setError}
          />
        ) : null
      }
    >
      <dl class="facts">
        <dt>Status</dt>
        <dd>
          <Status value={f.status} />
        </dd>
        <dt>Format</dt>
        <dd>{f.fileFormat}</dd>
        <dt>Size</dt>
        <dd>{bytes(f.fileSize)}</dd>
        <dt>Rows</dt>
        <dd>{p ? count(p.totalRows) : count(f.totalRows)}</dd>
      </dl>
      {f.status === "IMPORTING" || f.status === "COMPLETED" || (f.status === "FAILED" && f.errorMessage) ? (
        <ImportProgress id={id} onDone={() => void file.reload()} />
      ) : null}
      {f.status === "COMPLETED" && target ? (
        <p>
          <a class="button primary" href={href(`/tables/${encodeURIComponent(target.ns)}/${encodeURIComponent(target.name)}`)}>
            Open table {target.ns}.{target.name}
          </a>
        </p>
      ) : null}
      <ErrorBox message={preview.error} />
      {p ? (
        <form class="form wide" onSubmit={startImport} aria-label="Import settings">
          <h2>Preview</h2>
          <p class="muted">
            First {p.previewRows.length} of {count(p.totalRows)} rows.{" "}
            {configurable ? "Rename columns and change their types in the header." : ""}
          </p>
          <div class="table-wrap">
            <table class="grid" aria-label="Preview">
              <thead>
                <tr>
                  {p.columns.map((c) => (
                    <th scope="col">
                      {configurable ? (
                        <>
                          <input
                            aria-label={`Name of column ${c.name}`}
                            value={names[c.name] ?? c.name}
                            pattern="[A-Za-z_][A-Za-z0-9_]*"
                            spellcheck={false}
                            onInput={(e) => setNames({ ...names, [c.name]: (e.target as HTMLInputElement).value })}
                          />
                          <select
                            aria-label={`Type of column ${c.name}`}
                            value={types[c.name] ?? c.type}
                            onChange={(e) => setTypes({ ...types, [c.name]: (e.target as HTMLSelectElement).value })}
                          >
                            {typeChoices(c.type, types[c.name]).map((t) => (
                              <option value={t}>
                                {t}
                                {t === c.type ? " (inferred)" : ""}
                              </option>
                            ))}
                          </select>
                        </>
                      ) : (
                        <>
                          {names[c.name] ?? c.name}
                          <span class="type">{types[c.name] ?? c.type}</span>
                        </>
                      )}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {p.previewRows.map((row) => (
                  <tr>
                    {p.columns.map((c) => (
                      <td>{cell(row[c.name])}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {configurable ? (
            <>
              <div class="row">
                <div class="field">
                  <label for="import-table">Table name</label>
                  <input id="import-table" required maxLength={128} value={table} onInput={(e) => setTable((e.target as HTMLInputElement).value)} />
                </div>
                <div class="field">
                  <label for="import-namespace">Namespace</label>
                  <input
                    id="import-namespace"
                    maxLength={128}
                    value={namespace}
                    onInput={(e) => setNamespace((e.target as HTMLInputElement).value)}
                  />
                </div>
                <div class="field">
                  <label for="import-mode">Mode</label>
                  <select id="import-mode" value={mode} onChange={(e) => setMode((e.target as HTMLSelectElement).value)}>
                    <option value="append">append</option>
                    <option value="overwrite">overwrite</option>
                  </select>
                </div>
              </div>
              <ErrorBox message={error} />
              <button type="submit" class="primary" disabled={busy}>
                {busy ? "Starting import…" : "Import"}
              </button>
            </>
          ) : (
            <ErrorBox message={error} />
          )}
        </form>
      ) : preview.error ? null : (
        <Loading what="the preview" />
      )}
    </Page>
  );
}
