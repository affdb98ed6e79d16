// The shell: sign-in, tenant picker, navigation and the routes.
import { createContext } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import { get, setSession, setUnauthorizedHandler, type Me } from "./api";
import { FilesPage, FileDetailPage } from "./pages/Files";
import { ConnectionFormPage, ConnectionsPage } from "./pages/Connections";
import { SourceDetailPage, SourceFormPage, SourcesPage } from "./pages/Sources";
import { SyncDetailPage, SyncsPage } from "./pages/Syncs";
import { TableDetailPage, TablesPage } from "./pages/Tables";
import { href, match, navigate, onLinkClick, useRoute } from "./router";
import {
  clearSession,
  expiresAt,
  loadConfig,
  storedSession,
  storedToken,
  storeTenant,
  storeToken,
  takeTokenFromUrl,
  tenantsOf,
  type ConsoleConfig,
} from "./session";
import { ErrorBox, messageOf } from "./ui";

export const MANAGE = "data:ingestion:manage";

export interface Account {
  token: string;
  tenant: string;
  tenants: string[];
  subject: string;
  canManage: boolean;
}

const AccountContext = createContext<Account | null>(null);

export function useAccount(): Account {
  const account = useContext(AccountContext);
  if (!account) throw new Error("not signed in");
  return account;
}

async function signIn(token: string, tenant: string, config: ConsoleConfig): Promise<Account> {
  setSession({ token, tenant });
  const me = await get<Me>("/me");
  storeToken(token);
  storeTenant(tenant);
  return {
    token,
    tenant,
    tenants: tenantsOf(token, config),
    subject: me.subject,
    canManage: me.permissions.includes(MANAGE),
  };
}

function SignIn(props: {
  config: ConsoleConfig;
  initialToken: string;
  message: string | null;
  onSignedIn: (account: Account) => void;
}) {
  const [token, setToken] = useState(props.initialToken);
  const [tenant, setTenant] = useState("");
  const [error, setError] = useState<string | null>(props.message);
  const [busy, setBusy] = useState(false);
  const trimmed = token.trim().replace(/^Bearer\s+/i, "");
  const tenants = trimmed ? tenantsOf(trimmed, props.config) : [];
  const chosen = tenant || tenants[0] || "";

  useEffect(() => {
    document.title = "Sign in · ingest console";
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    if (!chosen) {
      setError("Enter the tenant ID: the token lists no tenants");
      return;
    }
    setBusy(true);
    try {
      props.onSignedIn(await signIn(trimmed, chosen, props.config));
    } catch (err) {
      setSession(null);
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin" id="main">
      <h1>ingest console</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <div class="field">
          <label for="token">Bearer token</label>
          <textarea
            id="token"
            rows={5}
            required
            spellcheck={false}
            autocomplete="off"
            value={token}
            onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)}
          />
          <small class="help">
            Paste a JWT, or open the link <code>ingest console --tenant UUID</code> prints. It is kept in this tab
            only.
          </small>
        </div>
        {tenants.length > 1 ? (
          <div class="field">
            <label for="tenant">Tenant</label>
            <select id="tenant" value={chosen} onChange={(e) => setTenant((e.target as HTMLSelectElement).value)}>
              {tenants.map((t) => (
                <option value={t}>{t}</option>
              ))}
            </select>
          </div>
        ) : tenants.length === 0 && trimmed ? (
          <div class="field">
            <label for="tenant">Tenant ID</label>
            <input id="tenant" value={tenant} onInput={(e) => setTenant((e.target as HTMLInputElement).value.trim())} />
          </div>
        ) : tenants.length === 1 ? (
          <p class="muted">Tenant {tenants[0]}</p>
        ) : null}
        <ErrorBox message={error} />
        <button type="submit" class="primary" disabled={busy || !trimmed}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

const NAV: [string, string][] = [
  ["/sources", "Sources"],
  ["/connections", "Connections"],
  ["/syncs", "Syncs"],
  ["/files", "Files"],
  ["/tables", "Tables"],
];

function Routes({ path }: { path: string }) {
  let p: Record<string, string> | null;
  if (path === "/" || path === "" || match("/sources", path)) return <SourcesPage />;
  if (match("/sources/new", path)) return <SourceFormPage />;
  if ((p = match("/sources/:id/edit", path))) return <SourceFormPage id={p.id} />;
  if ((p = match("/sources/:id", path))) return <SourceDetailPage id={p.id!} />;
  if (match("/connections", path)) return <ConnectionsPage />;
  if (match("/connections/new", path)) return <ConnectionFormPage />;
  if ((p = match("/connections/:id/edit", path))) return <ConnectionFormPage id={p.id} />;
  if (match("/syncs", path)) return <SyncsPage />;
  if ((p = match("/syncs/:id", path))) return <SyncDetailPage id={p.id!} />;
  if (match("/files", path)) return <FilesPage />;
  if ((p = match("/files/:id", path))) return <FileDetailPage id={p.id!} />;
  if (match("/tables", path)) return <TablesPage />;
  if ((p = match("/tables/:namespace/:table", path))) return <TableDetailPage namespace={p.namespace!} table={p.table!} />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no page at {path}. <a href={href("/sources")}>Go to sources</a>.
      </p>
    </section>
  );
}

function Shell({ account, onSwitch, onSignOut }: { account: Account; onSwitch: (tenant: string) => void; onSignOut: () => void }) {
  const { path } = useRoute();
  const expires = expiresAt(account.token);
  return (
    <AccountContext.Provider value={account}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href={href("/sources")}>
          ingest
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([to, label]) => (
              <li>
                <a href={href(to)} aria-current={path === to || path.startsWith(`${to}/`) ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="account">
          {account.tenants.length > 1 ? (
            <>
              <label for="tenant-switch" class="visually-hidden">
                Tenant
              </label>
              <select id="tenant-switch" value={account.tenant} onChange={(e) => onSwitch((e.target as HTMLSelectElement).value)}>
                {account.tenants.map((t) => (
                  <option value={t}>{t}</option>
                ))}
              </select>
            </>
          ) : (
            <span class="tenant" title="Tenant">
              {account.tenant}
            </span>
          )}
          <span class="muted" title={expires ? `Token expires ${expires.toISOString()}` : undefined}>
            {account.subject}
            {account.canManage ? "" : " (read-only)"}
          </span>
          <button type="button" class="plain" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">
        <Routes path={path} key={`${account.tenant}`} />
      </main>
    </AccountContext.Provider>
  );
}

export function App() {
  const [config, setConfig] = useState<ConsoleConfig | null>(null);
  const [account, setAccount] = useState<Account | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [initialToken, setInitialToken] = useState("");

  useEffect(() => {
    const start = async (fromLink: string | null) => {
      const cfg = await loadConfig();
      setConfig(cfg);
      const saved = storedSession();
      const token = fromLink ?? saved?.token ?? storedToken();
      if (!token) return;
      const tenant = saved?.tenant ?? (tenantsOf(token, cfg).length === 1 ? tenantsOf(token, cfg)[0] : undefined);
      if (!tenant) {
        setInitialToken(token);
        return;
      }
      try {
        setAccount(await signIn(token, tenant, cfg));
        setMessage(null);
      } catch (err) {
        setSession(null);
        clearSession();
        setInitialToken("");
        setMessage(messageOf(err));
      }
    };
    void start(takeTokenFromUrl());
    // a sign-in link opened in a tab that already shows the console only changes the fragment
    const onHash = () => {
      const fromLink = takeTokenFromUrl();
      if (!fromLink) return;
      setAccount(null);
      void start(fromLink);
    };
    window.addEventListener("hashchange", onHash);
    setUnauthorizedHandler((msg) => {
      setSession(null);
      clearSession();
      setAccount(null);
      setMessage(`Signed out: ${msg}`);
    });
    document.addEventListener("click", onLinkClick);
    return () => {
      window.removeEventListener("hashchange", onHash);
      document.removeEventListener("click", onLinkClick);
    };
  }, []);

  if (!config) return <p class="muted">Loading…</p>;
  if (!account) {
    return (
      <SignIn
        config={config}
        initialToken={initialToken}
        message={message}
        onSignedIn={(a) => {
          setMessage(null);
          setAccount(a);
        }}
      />
    );
  }
  return (
    <Shell
      account={account}
      onSwitch={async (tenant) => {
        try {
          setAccount(await signIn(account.token, tenant, config));
          navigate("/sources");
        } catch (err) {
          window.alert(messageOf(err));
        }
      }}
      onSignOut={() => {
        setSession(null);
        clearSession();
        setAccount(null);
        setInitialToken("");
        setMessage(null);
      }}
    />
  );
}
