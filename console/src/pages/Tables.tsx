import { get, type TableDetail, type TableRows, type TableSummary } from "../api";
import { cell, count, when } from "../format";
import { href } from "../router";
import { ErrorBox, Loading, Page, useLoad } from "../ui";

const tablePath = (namespace: string, name: string) =>
  `/tables/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;

export function TablesPage() {
  const tables = useLoad(() => get<TableSummary[]>("/tables"), []);
  return (
    <Page title="Tables">
      <ErrorBox message={tables.error} />
      {tables.data === undefined ? (
        tables.error ? null : <Loading what="tables" />
      ) : tables.data.length === 0 ? (
        <p class="muted">No tables yet: run a sync or import a file.</p>
      ) : (
        <div class="table-wrap">
          <table aria-label="Tables">
            <thead>
              <tr>
                <th scope="col">Table</th>
                <th scope="col">Rows</th>
                <th scope="col">Last updated</th>
              </tr>
            </thead>
            <tbody>
              {tables.data.map((t) => (
                <tr key={`${t.namespace}.${t.name}`}>
                  <td>
                    <a href={href(tablePath(t.namespace, t.name))}>
                      {t.namespace}.{t.name}
                    </a>
                  </td>
                  <td class="num">{count(t.rowCount)}</td>
                  <td>{when(t.lastUpdated)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Page>
  );
}

export function TableDetailPage({ namespace, table }: { namespace: string; table: string }) {
  const path = `/tables/${encodeURIComponent(namespace)}/${encodeURIComponent(table)}`;
  const detail = useLoad(() => get<TableDetail>(path), [path]);
  const rows = useLoad(() => get<TableRows>(`${path}/rows?limit=50`), [path]);
  const d = detail.data;
  return (
    <Page title={`Table ${namespace}.${table}`}>
      <ErrorBox message={detail.error} />
      {!d ? (
        detail.error ? null : <Loading what="the table" />
      ) : (
        <>
          <dl class="facts">
            <dt>Rows</dt>
            <dd>{count(d.rowCount)}</dd>
            <dt>Last updated</dt>
            <dd>{when(d.lastUpdated)}</dd>
          </dl>
          <div class="two-columns">
            <div>
              <h2>Schema</h2>
              <div class="table-wrap">
                <table aria-label="Schema">
                  <thead>
                    <tr>
                      <th scope="col">Column</th>
                      <th scope="col">Type</th>
                      <th scope="col">Nullable</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.columns.map((c) => (
                      <tr>
                        <td>
                          <code>{c.name}</code>
                        </td>
                        <td>{c.type}</td>
                        <td>{c.nullable ? "yes" : "no"}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </div>
            <div>
              <h2>Snapshots</h2>
              <div class="table-wrap">
                <table aria-label="Snapshots">
                  <thead>
                    <tr>
                      <th scope="col">Committed</th>
                      <th scope="col">Operation</th>
                      <th scope="col">Added</th>
                      <th scope="col">Total</th>
                      <th scope="col">Made by</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.snapshots.map((s) => (
                      <tr key={s.snapshotId}>
                        <td>{when(s.committedAt)}</td>
                        <td>{s.operation ?? "-"}</td>
                        <td class="num">{count(s.addedRecords)}</td>
                        <td class="num">{count(s.totalRecords)}</td>
                        <td>
                          {s.syncId ? (
                            <a href={href(`/syncs/${s.syncId}`)}>sync {s.syncId.slice(0, 8)}</a>
                          ) : s.importId ? (
                            <a href={href(`/files/${s.importId}`)}>import {s.importId.slice(0, 8)}</a>
                          ) : (
                            "-"
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </div>
          </div>
        </>
      )}
      <h2>First rows</h2>
      <ErrorBox message={rows.error} />
      {rows.data ? (
        <div class="table-wrap">
          <table class="grid" aria-label="Rows">
            <thead>
              <tr>
                {rows.data.columns.map((c) => (
                  <th scope="col">{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.data.rows.map((r) => (
                <tr>
                  {rows.data!.columns.map((c) => (
                    <td>{cell(r[c])}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : rows.error ? null : (
        <Loading what="rows" />
      )}
    </Page>
  );
}
