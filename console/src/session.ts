// The signed-in token and tenant: kept in sessionStorage (this tab only, gone when it closes).
import type { Session } from "./api";

const TOKEN_KEY = "ingest.console.token";
const TENANT_KEY = "ingest.console.tenant";

export interface ConsoleConfig {
  tenantsClaim: string;
  permissionsClaim: string;
}

const DEFAULT_CONFIG: ConsoleConfig = { tenantsClaim: "tenants", permissionsClaim: "permissions" };

/** Claim names the service reads (served next to the console; an SPA hosted elsewhere uses the defaults). */
export async function loadConfig(): Promise<ConsoleConfig> {
  try {
    const response = await fetch(`${import.meta.env.BASE_URL}config.json`, { cache: "no-store" });
    if (!response.ok) return DEFAULT_CONFIG;
    return { ...DEFAULT_CONFIG, ...((await response.json()) as Partial<ConsoleConfig>) };
  } catch {
    return DEFAULT_CONFIG;
  }
}

/** A sign-in link carries the token in the fragment (never sent to a server): move it out of the URL at once. */
export function takeTokenFromUrl(): string | null {
  const hash = window.location.hash.replace(/^#/, "");
  if (!hash) return null;
  const params = new URLSearchParams(hash);
  const token = params.get("token");
  if (!token) return null;
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.removeItem(TENANT_KEY);
  const tenant = params.get("tenant");
  if (tenant) sessionStorage.setItem(TENANT_KEY, tenant);
  return token;
}

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storedSession(): Session | null {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const tenant = sessionStorage.getItem(TENANT_KEY);
  return token && tenant ? { token, tenant } : null;
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function storeTenant(tenant: string): void {
  sessionStorage.setItem(TENANT_KEY, tenant);
}

export function clearSession(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(TENANT_KEY);
}

/** The token's claims, read without verifying (the service verifies; this only lists the tenants). */
export function claims(token: string): Record<string, unknown> | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return value && typeof value === "object" ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function tenantsOf(token: string, config: ConsoleConfig): string[] {
  const value = claims(token)?.[config.tenantsClaim];
  if (typeof value === "string") return value.split(/\s+/).filter(Boolean);
  return Array.isArray(value) ? value.map(String) : [];
}

export function expiresAt(token: string): Date | null {
  const exp = claims(token)?.exp;
  return typeof exp === "number" ? new Date(exp * 1000) : null;
}
