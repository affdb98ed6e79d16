import { useEffect, useState } from "preact/hooks";
import { ApiError, del, get, post, put, type ConnectorSpec, type Source, type Stream } from "../api";
import { useAccount } from "../App";
import { when } from "../format";
import { href, navigate } from "../router";
import { defaultsOf, ObjectFields, type Config } from "../SchemaForm";
import { ActionButton, ErrorBox, Loading, messageOf, Notice, Page, Status, useLoad } from "../ui";

export function SourcesPage() {
  const { canManage } = useAccount();
  const sources = useLoad(() => get<Source[]>("/sources"), []);
  return (
    <Page
      title="Sources"
      actions={
        canManage ? (
          <a class="button primary" href={href("/sources/new")}>
            New source
          </a>
        ) : null
      }
    >
      <ErrorBox message={sources.error} />
      {sources.data === undefined ? (
        sources.error ? null : <Loading what="sources" />
      ) : sources.data.length === 0 ? (
        <p class="muted">No sources yet.{canManage ? " Create one to start syncing." : ""}</p>
      ) : (
        <div class="table-wrap">
          <table aria-label="Sources">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Connector</th>
                <th scope="col">Status</th>
                <th scope="col">Last test</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {sources.data.map((s) => (
                <tr key={s.id}>
                  <td>
                    <a href={href(`/sources/${s.id}`)}>{s.name}</a>
                  </td>
                  <td>{s.connectorType}</td>
                  <td>
                    <Status value={s.status} />
                  </td>
                  <td>{when(s.lastTestedAt)}</td>
                  <td>{when(s.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Page>
  );
}

export function SourceFormPage({ id }: { id?: string }) {
  const editing = id !== undefined;
  const types = useLoad(() => (editing ? Promise.resolve([]) : get<string[]>("/sources/connector-types")), [editing]);
  const existing = useLoad(() => (editing ? get<Source>(`/sources/${id}`) : Promise.resolve(null)), [id]);
  const [connectorType, setConnectorType] = useState("");
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [config, setConfig] = useState<Config>({});
  const [spec, setSpec] = useState<ConnectorSpec | null>(null);
  const [specError, setSpecError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const source = existing.data;
    if (!source) return;
    setConnectorType(source.connectorType);
    setName(source.name);
    setDescription(source.description ?? "");
  }, [existing.data]);

  useEffect(() => {
    if (!connectorType) {
      setSpec(null);
      return;
    }
    let live = true;
    setSpec(null);
    setSpecError(null);
    get<ConnectorSpec>(`/sources/connector-types/${encodeURIComponent(connectorType)}/spec`)
      .then((loaded) => {
        if (!live) return;
        setSpec(loaded);
        const defaults = (defaultsOf(loaded.connectionSpecification) as Config | undefined) ?? {};
        // editing: the stored config, secrets arriving as ******** (sent back as is, they keep their value)
        setConfig(editing ? { ...(existing.data?.connectionConfig ?? {}) } : defaults);
      })
      .catch((e: unknown) => live && setSpecError(messageOf(e)));
    return () => {
      live = false;
    };
  }, [connectorType, editing, existing.data]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { name, description: description || null, connectionConfig: config };
      const saved = editing
        ? await put<Source>(`/sources/${id}`, body)
        : await post<Source>("/sources", { ...body, connectorType });
      navigate(`/sources/${saved.id}`);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title={editing ? `Edit source ${existing.data?.name ?? ""}` : "New source"}>
      <ErrorBox message={types.error ?? existing.error} />
      <form class="form" onSubmit={submit} aria-label={editing ? "Edit source" : "New source"}>
        {editing ? (
          <p>
            Connector <strong>{connectorType}</strong>
          </p>
        ) : (
          <div class="field">
            <label for="connector-type">Connector</label>
            <select
              id="connector-type"
              required
              value={connectorType}
              onChange={(e) => setConnectorType((e.target as HTMLSelectElement).value)}
            >
              <option value="">Choose a connector…</option>
              {(types.data ?? []).map((t) => (
                <option value={t}>{t}</option>
              ))}
            </select>
          </div>
        )}
        <div class="field">
          <label for="source-name">Name</label>
          <input id="source-name" required maxLength={200} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="source-description">Description</label>
          <input
            id="source-description"
            maxLength={2000}
            value={description}
            onInput={(e) => setDescription((e.target as HTMLInputElement).value)}
          />
        </div>
        <ErrorBox message={specError} />
        {connectorType && !spec && !specError ? <Loading what={`the ${connectorType} configuration form`} /> : null}
        {spec ? (
          <fieldset class="config">
            <legend>{spec.title || `${connectorType} configuration`}</legend>
            <ObjectFields schema={spec.connectionSpecification} value={config} idPrefix="config" onChange={setConfig} />
          </fieldset>
        ) : null}
        <ErrorBox message={error} />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy || !spec}>
            {busy ? "Saving…" : editing ? "Save source" : "Create source"}
          </button>
          <a class="button plain" href={href(editing ? `/sources/${id}` : "/sources")}>
            Cancel
          </a>
        </div>
      </form>
    </Page>
  );
}

export function StreamsTable({ streams }: { streams: Stream[] }) {
  return (
    <div class="table-wrap">
      <table aria-label="Discovered streams">
        <thead>
          <tr>
            <th scope="col">Stream</th>
            <th scope="col">Sync modes</th>
            <th scope="col">Primary key</th>
            <th scope="col">Cursor</th>
            <th scope="col">Columns</th>
          </tr>
        </thead>
        <tbody>
          {streams.map((s) => (
            <tr key={s.name}>
              <th scope="row">{s.name}</th>
              <td>{s.supportedSyncModes.join(", ")}</td>
              <td>{s.primaryKey.map((k) => k.join(".")).join(", ") || "-"}</td>
              <td>{s.cursorField.join(".") || "-"}</td>
              <td>
                <details>
                  <summary>{s.columns.length} columns</summary>
                  <ul class="columns">
                    {s.columns.map((c) => (
                      <li>
                        <code>{c.name}</code> {c.type}
                        {c.nullable ? "" : " not null"}
                      </li>
                    ))}
                  </ul>
                </details>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function SourceDetailPage({ id }: { id: string }) {
  const { canManage } = useAccount();
  const source = useLoad(() => get<Source>(`/sources/${id}`), [id]);
  const [error, setError] = useState<string | null>(null);
  const [conflict, setConflict] = useState(false);
  const [tested, setTested] = useState<Source | null>(null);
  const [streams, setStreams] = useState<Stream[] | null>(null);
  const s = source.data;

  if (!s) {
    return (
      <Page title="Source">
        <ErrorBox message={source.error} />
        {source.error ? null : <Loading what="the source" />}
      </Page>
    );
  }

  const test = async () => {
    setTested(null);
    const result = await post<Source>(`/sources/${id}/test`);
    setTested(result);
    source.set(result);
  };
  const discover = async () => {
    setStreams(null);
    setStreams((await post<{ streams: Stream[] }>(`/sources/${id}/discover`)).streams);
  };
  const remove = async () => {
    setConflict(false);
    try {
      await del(`/sources/${id}`);
      navigate("/sources");
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) setConflict(true);
      throw e;
    }
  };

  return (
    <Page
      title={`Source ${s.name}`}
      actions={
        <>
          {canManage ? (
            <>
              <ActionButton label="Test" busyLabel="Testing…" kind="primary" action={test} onError={setError} />
              <ActionButton label="Discover" busyLabel="Discovering…" action={discover} onError={setError} />
              <a class="button plain" href={href(`/sources/${id}/edit`)}>
                Edit
              </a>
              <a class="button plain" href={href(`/connections/new?sourceId=${id}`)}>
                New connection
              </a>
              <ActionButton
                label="Delete"
                kind="danger"
                confirm={`Delete source ${s.name}?`}
                action={remove}
                onError={setError}
              />
            </>
          ) : null}
        </>
      }
    >
      <dl class="facts">
        <dt>Connector</dt>
        <dd>{s.connectorType}</dd>
        <dt>Status</dt>
        <dd>
          <Status value={s.status} />
          {s.statusMessage ? <span class="status-message"> {s.statusMessage}</span> : null}
        </dd>
        <dt>Last test</dt>
        <dd>{when(s.lastTestedAt)}</dd>
        <dt>Description</dt>
        <dd>{s.description || "-"}</dd>
        <dt>Created</dt>
        <dd>{when(s.createdAt)}</dd>
      </dl>
      <ErrorBox message={error} />
      {conflict ? (
        <Notice>
          A source that connections still use cannot be deleted: delete those{" "}
          <a href={href("/connections")}>connections</a> first.
        </Notice>
      ) : null}
      {tested ? (
        <Notice>
          Test result: <strong>{tested.status}</strong>
          {tested.statusMessage ? ` — ${tested.statusMessage}` : ""}
        </Notice>
      ) : null}
      {streams ? (
        <>
          <h2>Streams</h2>
          <StreamsTable streams={streams} />
        </>
      ) : null}
      {s.connectionConfig ? (
        <details>
          <summary>Configuration</summary>
          <pre class="config-view">{JSON.stringify(s.connectionConfig, null, 2)}</pre>
        </details>
      ) : null}
    </Page>
  );
}
