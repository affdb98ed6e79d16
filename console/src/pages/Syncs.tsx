import { useEffect, useState } from "preact/hooks";
import { get, post, SYNC_ACTIVE, type Connection, type Sync, type SyncPage } from "../api";
import { useAccount } from "../App";
import { bytes, count, duration, when } from "../format";
import { href, navigate, useRoute } from "../router";
import { ActionButton, ErrorBox, Loading, Page, Status, useLoad, usePoll } from "../ui";

const SORTABLE: [string, string][] = [
  ["createdAt", "Created"],
  ["startedAt", "Started"],
  ["completedAt", "Completed"],
  ["status", "Status"],
  ["recordsSynced", "Records"],
  ["bytesSynced", "Bytes"],
  ["durationMs", "Duration"],
];
const PAGE_SIZE = 20;

function elapsed(sync: Sync, now: number): number | null {
  if (sync.durationMs !== null) return sync.durationMs;
  if (!sync.startedAt) return null;
  return now - new Date(sync.startedAt).getTime();
}

export function SyncsPage() {
  const { query } = useRoute();
  const connectionId = query.get("connectionId") ?? "";
  const page = Number(query.get("page") ?? "0") || 0;
  const sort = query.get("sort") ?? "createdAt,desc";
  const [field, direction] = sort.split(",") as [string, string];
  const connections = useLoad(() => get<Connection[]>("/connections"), []);
  const params = new URLSearchParams({ page: String(page), size: String(PAGE_SIZE), sort });
  if (connectionId) params.set("connectionId", connectionId);
  const syncs = useLoad(() => get<SyncPage>(`/syncs?${params.toString()}`), [params.toString()]);
  const active = (syncs.data?.content ?? []).some((s) => SYNC_ACTIVE.has(s.status));
  usePoll(active, 2000, () => syncs.reload());

  const go = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(query);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === "") next.delete(k);
      else next.set(k, v);
    }
    const qs = next.toString();
    navigate(`/syncs${qs ? `?${qs}` : ""}`, true);
  };
  const sortBy = (name: string) =>
    go({ sort: `${name},${field === name && direction === "desc" ? "asc" : "desc"}`, page: null });

  const data = syncs.data;
  return (
    <Page title="Syncs">
      <div class="filters">
        <div class="field inline">
          <label for="sync-connection">Connection</label>
          <select
            id="sync-connection"
            value={connectionId}
            onChange={(e) => go({ connectionId: (e.target as HTMLSelectElement).value, page: null })}
          >
            <option value="">All connections</option>
            {(connections.data ?? []).map((c) => (
              <option value={c.id}>{c.name}</option>
            ))}
          </select>
        </div>
        <div class="field inline">
          <label for="sync-sort">Sort by</label>
          <select id="sync-sort" value={sort} onChange={(e) => go({ sort: (e.target as HTMLSelectElement).value, page: null })}>
            {SORTABLE.flatMap(([name, label]) => [
              <option value={`${name},desc`}>{label}, newest / largest first</option>,
              <option value={`${name},asc`}>{label}, oldest / smallest first</option>,
            ])}
          </select>
        </div>
      </div>
      <ErrorBox message={syncs.error ?? connections.error} />
      {!data ? (
        syncs.error ? null : <Loading what="sync history" />
      ) : data.content.length === 0 ? (
        <p class="muted">No syncs{connectionId ? " for this connection" : ""} yet.</p>
      ) : (
        <>
          <div class="table-wrap">
            <table aria-label="Sync history">
              <thead>
                <tr>
                  <th scope="col">Connection</th>
                  {SORTABLE.map(([name, label]) => (
                    <th scope="col" aria-sort={field === name ? (direction === "asc" ? "ascending" : "descending") : undefined}>
                      <button type="button" class="sort" onClick={() => sortBy(name)}>
                        {label}
                        {field === name ? (direction === "asc" ? " ▲" : " ▼") : ""}
                      </button>
                    </th>
                  ))}
                  <th scope="col">Trigger</th>
                </tr>
              </thead>
              <tbody>
                {data.content.map((s) => (
                  <tr key={s.id}>
                    <td>
                      <a href={href(`/syncs/${s.id}`)}>{s.connectionName}</a>
                    </td>
                    <td>{when(s.createdAt ?? null)}</td>
                    <td>{s.startedAt ? when(s.startedAt) : "-"}</td>
                    <td>{s.completedAt ? when(s.completedAt) : "-"}</td>
                    <td>
                      <Status value={s.status} />
                    </td>
                    <td class="num">{count(s.recordsSynced)}</td>
                    <td class="num">{bytes(s.bytesSynced)}</td>
                    <td class="num">{duration(s.durationMs)}</td>
                    <td>{s.trigger}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav class="pager" aria-label="Pages">
            <button type="button" class="plain" disabled={page <= 0} onClick={() => go({ page: String(page - 1) })}>
              Previous page
            </button>
            <span>
              Page {data.number + 1} of {Math.max(1, data.totalPages)} ({data.totalElements} syncs)
            </span>
            <button
              type="button"
              class="plain"
              disabled={page + 1 >= data.totalPages}
              onClick={() => go({ page: String(page + 1) })}
            >
              Next page
            </button>
          </nav>
        </>
      )}
    </Page>
  );
}

export function SyncDetailPage({ id }: { id: string }) {
  const { canManage } = useAccount();
  const sync = useLoad(() => get<Sync>(`/syncs/${id}`), [id]);
  const [error, setError] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());
  const s = sync.data;
  const running = s !== undefined && SYNC_ACTIVE.has(s.status);
  usePoll(running, 1000, () => {
    setNow(Date.now());
    void sync.reload();
  });
  useEffect(() => setNow(Date.now()), [s]);

  if (!s) {
    return (
      <Page title="Sync">
        <ErrorBox message={sync.error} />
        {sync.error ? null : <Loading what="the sync" />}
      </Page>
    );
  }
  return (
    <Page
      title={`Sync of ${s.connectionName}`}
      actions={
        canManage && running ? (
          <ActionButton
            label="Cancel sync"
            busyLabel="Cancelling…"
            kind="danger"
            confirm="Cancel this sync? Nothing of the run is committed."
            action={async () => {
              await post(`/syncs/${id}/cancel`);
              await sync.reload();
            }}
            onError={setError}
          />
        ) : null
      }
    >
      <ErrorBox message={error} />
      <dl class="facts" aria-live="polite">
        <dt>Status</dt>
        <dd>
          <Status value={s.status} />
        </dd>
        <dt>Records</dt>
        <dd data-testid="records">{count(s.recordsSynced)}</dd>
        <dt>Bytes</dt>
        <dd>{bytes(s.bytesSynced)}</dd>
        <dt>{running ? "Elapsed" : "Duration"}</dt>
        <dd>{duration(elapsed(s, now))}</dd>
        <dt>Started</dt>
        <dd>{s.startedAt ? when(s.startedAt) : running ? "waiting for a worker" : "-"}</dd>
        <dt>Completed</dt>
        <dd>{s.completedAt ? when(s.completedAt) : "-"}</dd>
        <dt>Trigger</dt>
        <dd>{s.trigger}</dd>
      </dl>
      {running ? <progress aria-label="Sync running" /> : null}
      {s.errorMessage ? (
        <div class="error" role="alert">
          <strong>{s.status === "CANCELLED" ? "Cancelled" : "Failed"}:</strong> {s.errorMessage}
        </div>
      ) : null}
      <p>
        <a href={href(`/syncs?connectionId=${s.connectionId}`)}>All syncs of {s.connectionName}</a>
      </p>
    </Page>
  );
}
