import { Cron } from "croner";
import cronstrue from "cronstrue";
import { useEffect, useState } from "preact/hooks";
import { del, get, post, put, SYNC_MODES, type Connection, type Source, type Stream, type Sync } from "../api";
import { useAccount } from "../App";
import { when } from "../format";
import { href, navigate, useRoute } from "../router";
import { ActionButton, ErrorBox, Loading, messageOf, Page, Status, useLoad } from "../ui";

/** A cron expression in words, and its next runs; or why it is not valid. */
export function describeCron(expression: string): { words: string; next: Date[] } | { error: string } {
  try {
    const words = cronstrue.toString(expression, { use24HourTimeFormat: true, verbose: false });
    const next = new Cron(expression, { paused: true }).nextRuns(3);
    return { words, next };
  } catch (e) {
    return { error: `Not a valid cron expression: ${messageOf(e).replace(/^Error:\s*/, "")}` };
  }
}

function Schedule({ expression }: { expression: string | null }) {
  if (!expression) return <>manual</>;
  const described = describeCron(expression);
  return (
    <span title={expression}>
      {"words" in described ? described.words : expression}
    </span>
  );
}

export function ConnectionsPage() {
  const { canManage } = useAccount();
  const connections = useLoad(() => get<Connection[]>("/connections"), []);
  const [error, setError] = useState<string | null>(null);
  const trigger = async (c: Connection) => {
    const sync = await post<Sync>(`/syncs/connections/${c.id}/trigger`);
    navigate(`/syncs/${sync.id}`);
  };
  return (
    <Page
      title="Connections"
      actions={
        canManage ? (
          <a class="button primary" href={href("/connections/new")}>
            New connection
          </a>
        ) : null
      }
    >
      <ErrorBox message={connections.error ?? error} />
      {connections.data === undefined ? (
        connections.error ? null : <Loading what="connections" />
      ) : connections.data.length === 0 ? (
        <p class="muted">No connections yet.{canManage ? " Create one from a source." : ""}</p>
      ) : (
        <div class="table-wrap">
          <table aria-label="Connections">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Source</th>
                <th scope="col">Status</th>
                <th scope="col">Mode</th>
                <th scope="col">Schedule</th>
                <th scope="col">Last sync</th>
                <th scope="col">Next run</th>
                {canManage ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {connections.data.map((c) => (
                <tr key={c.id}>
                  <td>
                    <a href={href(`/syncs?connectionId=${c.id}`)} title="Sync history">
                      {c.name}
                    </a>
                  </td>
                  <td>
                    <a href={href(`/sources/${c.sourceId}`)}>{c.sourceName}</a>
                  </td>
                  <td>
                    <Status value={c.status} />
                    {c.statusReason ? <div class="status-message">{c.statusReason}</div> : null}
                  </td>
                  <td>{c.syncMode}</td>
                  <td>
                    <Schedule expression={c.syncSchedule} />
                  </td>
                  <td>{when(c.lastSyncAt)}</td>
                  <td>{c.nextRunAt ? when(c.nextRunAt) : "-"}</td>
                  {canManage ? (
                    <td class="row-actions">
                      <ActionButton
                        label="Sync now"
                        ariaLabel={`Sync ${c.name} now`}
                        kind="primary"
                        action={() => trigger(c)}
                        onError={setError}
                      />
                      {"pausedAt" in c ? (
                        <ActionButton
                          label={c.status === "PAUSED" ? "Resume" : "Pause"}
                          ariaLabel={`${c.status === "PAUSED" ? "Resume" : "Pause"} ${c.name}`}
                          action={async () => {
                            await post(`/connections/${c.id}/${c.status === "PAUSED" ? "resume" : "pause"}`);
                            await connections.reload();
                          }}
                          onError={setError}
                        />
                      ) : null}
                      <a class="button plain" href={href(`/connections/${c.id}/edit`)} aria-label={`Edit ${c.name}`}>
                        Edit
                      </a>
                      <ActionButton
                        label="Delete"
                        ariaLabel={`Delete ${c.name}`}
                        kind="danger"
                        confirm={`Delete connection ${c.name}? A running sync is cancelled first.`}
                        action={async () => {
                          await del(`/connections/${c.id}`);
                          await connections.reload();
                        }}
                        onError={setError}
                      />
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Page>
  );
}

export function ConnectionFormPage({ id }: { id?: string }) {
  const editing = id !== undefined;
  const { query } = useRoute();
  const sources = useLoad(() => get<Source[]>("/sources"), []);
  const existing = useLoad(() => (editing ? get<Connection>(`/connections/${id}`) : Promise.resolve(null)), [id]);
  const [sourceId, setSourceId] = useState(query.get("sourceId") ?? "");
  const [name, setName] = useState("");
  const [namespace, setNamespace] = useState("");
  const [syncMode, setSyncMode] = useState("FULL_REFRESH");
  const [schedule, setSchedule] = useState("");
  const [streams, setStreams] = useState<Stream[] | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [streamsError, setStreamsError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [preset, setPreset] = useState<string[] | null>(null);

  useEffect(() => {
    const c = existing.data;
    if (!c) return;
    setSourceId(c.sourceId);
    setName(c.name);
    setNamespace(c.namespace ?? "");
    setSyncMode(c.syncMode);
    setSchedule(c.syncSchedule ?? "");
    setPreset(c.selectedStreams);
  }, [existing.data]);

  useEffect(() => {
    if (!sourceId) return;
    let live = true;
    setStreams(null);
    setStreamsError(null);
    // discovery runs the connector; the service stores its result for the connection
    post<{ streams: Stream[] }>(`/sources/${sourceId}/discover`)
      .then((found) => {
        if (!live) return;
        setStreams(found.streams);
        setSelected(new Set(preset ?? found.streams.map((s) => s.name)));
      })
      .catch((e: unknown) => live && setStreamsError(messageOf(e)));
    return () => {
      live = false;
    };
  }, [sourceId, preset]);

  const chosen = (streams ?? []).filter((s) => selected.has(s.name));
  const modes = chosen.length
    ? SYNC_MODES.filter((m) => chosen.every((s) => s.supportedSyncModes.includes(m)))
    : SYNC_MODES;
  const cron = schedule.trim() ? describeCron(schedule.trim()) : null;

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const all = streams !== null && selected.size === streams.length;
      const body = {
        sourceId,
        name,
        namespace: namespace.trim() || null,
        syncMode,
        syncSchedule: schedule.trim() || null,
        // null = every stream the source has (also ones it gains later)
        selectedStreams: streams === null ? preset : all ? null : [...selected],
      };
      if (editing) await put<Connection>(`/connections/${id}`, body);
      else await post<Connection>("/connections", body);
      navigate("/connections");
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title={editing ? `Edit connection ${existing.data?.name ?? ""}` : "New connection"}>
      <ErrorBox message={sources.error ?? existing.error} />
      <form class="form" onSubmit={submit} aria-label={editing ? "Edit connection" : "New connection"}>
        <div class="field">
          <label for="connection-source">Source</label>
          <select
            id="connection-source"
            required
            disabled={editing}
            value={sourceId}
            onChange={(e) => {
              setPreset(null);
              setSourceId((e.target as HTMLSelectElement).value);
            }}
          >
            <option value="">Choose a source…</option>
            {(sources.data ?? []).map((s) => (
              <option value={s.id}>
                {s.name} ({s.connectorType}, {s.status})
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="connection-name">Name</label>
          <input id="connection-name" required maxLength={200} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="connection-namespace">Namespace</label>
          <input
            id="connection-namespace"
            placeholder="default"
            maxLength={100}
            value={namespace}
            onInput={(e) => setNamespace((e.target as HTMLInputElement).value)}
          />
          <small class="help">The schema of the tenant's Iceberg catalog the tables land in.</small>
        </div>
        <fieldset class="nested">
          <legend>Streams</legend>
          <ErrorBox message={streamsError} />
          {sourceId && !streams && !streamsError ? <Loading what="the source's streams (discovering)" /> : null}
          {streams ? (
            <div class="table-wrap">
              <table aria-label="Streams to sync">
                <thead>
                  <tr>
                    <th scope="col">Sync</th>
                    <th scope="col">Stream</th>
                    <th scope="col">Modes it supports</th>
                    <th scope="col">Cursor</th>
                    <th scope="col">Primary key</th>
                  </tr>
                </thead>
                <tbody>
                  {streams.map((s) => (
                    <tr key={s.name}>
                      <td>
                        <input
                          type="checkbox"
                          id={`stream-${s.name}`}
                          aria-label={`Sync stream ${s.name}`}
                          checked={selected.has(s.name)}
                          onChange={(e) => {
                            const next = new Set(selected);
                            if ((e.target as HTMLInputElement).checked) next.add(s.name);
                            else next.delete(s.name);
                            setSelected(next);
                          }}
                        />
                      </td>
                      <td>
                        <label for={`stream-${s.name}`}>{s.name}</label> <span class="muted">({s.columns.length} columns)</span>
                      </td>
                      <td>{s.supportedSyncModes.join(", ")}</td>
                      <td>{s.cursorField.join(".") || "-"}</td>
                      <td>{s.primaryKey.map((k) => k.join(".")).join(", ") || "-"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : null}
          <small class="help">
            The API takes one sync mode for the whole connection; each stream uses its own cursor and primary key.
          </small>
        </fieldset>
        <div class="field">
          <label for="connection-mode">Sync mode</label>
          <select id="connection-mode" value={syncMode} onChange={(e) => setSyncMode((e.target as HTMLSelectElement).value)}>
            {(modes.includes(syncMode) ? modes : [syncMode, ...modes]).map((m) => (
              <option value={m}>{m}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="connection-schedule">Schedule (cron)</label>
          <input
            id="connection-schedule"
            placeholder="0 * * * *  (empty: manual only)"
            spellcheck={false}
            aria-describedby="schedule-words"
            value={schedule}
            onInput={(e) => setSchedule((e.target as HTMLInputElement).value)}
          />
          <div id="schedule-words" class="help" aria-live="polite">
            {cron === null ? (
              "Manual only: syncs run when triggered."
            ) : "error" in cron ? (
              <span class="invalid">{cron.error}</span>
            ) : (
              <>
                <strong>{cron.words}</strong>
                <ul class="next-runs" aria-label="Next runs">
                  {cron.next.map((d) => (
                    <li>{when(d)}</li>
                  ))}
                </ul>
              </>
            )}
          </div>
        </div>
        <ErrorBox message={error} />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy || !sourceId}>
            {busy ? "Saving…" : editing ? "Save connection" : "Create connection"}
          </button>
          <a class="button plain" href={href("/connections")}>
            Cancel
          </a>
        </div>
      </form>
    </Page>
  );
}
