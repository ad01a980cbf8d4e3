// Opens the events database and brings its schema up to date: WAL, table, missing nullable columns of an older
// layout, indexes, anomalies view. Used by the writer at construction (to report a bad path or a foreign table at
// once, on the caller's thread) and by its SQLite thread, which keeps its own connection.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { anomaliesViewName, anomaliesViewStatement, createTableStatement, eventColumns, eventIndexes, eventTableKey } from "./sqlite-schema";

export interface EventDatabaseOptions {
  /** Absolute path, or ":memory:". */
  path: string;
  /** A name that passed checkTableName. */
  table: string;
  busyTimeoutMs: number;
  storeDetails: boolean;
}

export interface EventDatabase {
  db: Database.Database;
  /** "wal" unless the file system refused WAL. */
  journalMode: string;
}

export function openEventDatabase(options: EventDatabaseOptions): EventDatabase {
  const { path, busyTimeoutMs } = options;
  let db: Database.Database;
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { timeout: busyTimeoutMs });
  } catch (error) {
    throw new Error(`cannot open SQLite database ${path} (option "path"): ${(error as Error).message}`, { cause: error });
  }
  try {
    // WAL lets readers (Grafana, sqlite3 CLI) query while we write; synchronous=NORMAL is durable across a process
    // crash in WAL mode and only risks the last commits on a power cut, for ~100x more commits per second.
    const journalMode = String(db.pragma("journal_mode = WAL", { simple: true }));
    db.pragma("synchronous = NORMAL");
    prepareEventTable(db, options.table, options.storeDetails);
    return { db, journalMode };
  } catch (error) {
    db.close();
    const message = (error as Error).message;
    // A refused layout already names the "table" option; anything else is about the file.
    throw new Error(message.startsWith("table ") ? message : `cannot prepare SQLite database ${path} (option "path"): ${message}`, { cause: error });
  }
}

const tableInfo = (db: Database.Database, table: string): Array<{ name: string; pk: number }> =>
  db.pragma(`table_info("${table}")`) as Array<{ name: string; pk: number }>;

/**
 * Creates or completes the table, indexes and view. Reads first and writes only when something is missing, so an
 * up-to-date database is opened without taking the write lock.
 */
export function prepareEventTable(db: Database.Database, table: string, storeDetails: boolean): void {
  const wanted = eventColumns(storeDetails);
  const view = anomaliesViewName(table);
  const upToDate = (): boolean => {
    const info = tableInfo(db, table);
    const present = new Set(info.map((column) => column.name));
    if (wanted.some((column) => !present.has(column.name))) return false;
    const key = eventTableKey(info);
    if (key === "other") return false; // refused below, with the reason
    const objects = db.prepare("SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN (?, ?)").all(table, view) as Array<{ type: string; name: string; sql: string }>;
    const names = new Set(objects.map((object) => object.name));
    if (eventIndexes(table, key).some((index) => !names.has(index.name))) return false;
    return objects.some((object) => object.type === "view" && object.name === view && object.sql === anomaliesViewStatement(table, present));
  };
  if (upToDate()) return;

  db.transaction(() => {
    db.exec(createTableStatement(table, storeDetails));
    const info = tableInfo(db, table);
    const present = new Set(info.map((column) => column.name));
    const missing = wanted.filter((column) => !present.has(column.name));
    const required = missing.filter((column) => column.notNull);
    if (required.length > 0) {
      throw new Error(
        `table "${table}" already exists without the columns ${required.map((column) => column.name).join(", ")}; choose another "table" name or move the old table away`,
      );
    }
    // Without a key on the event id, a replay would be stored twice: such a table is not ours either.
    const key = eventTableKey(info);
    if (key === "other") {
      throw new Error(`table "${table}" already exists with another primary key than (ts, event_id) or event_id; choose another "table" name or move the old table away`);
    }
    // An older layout of ours: add what it lacks (nullable, so existing rows read NULL there; the key stays as it is).
    for (const column of missing) {
      db.exec(`ALTER TABLE "${table}" ADD COLUMN ${column.name} ${column.type}`);
      present.add(column.name);
    }
    for (const index of eventIndexes(table, key)) db.exec(index.statement);
    const viewStatement = anomaliesViewStatement(table, present);
    const current = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?").get(view) as { sql: string } | undefined;
    if (current?.sql !== viewStatement) {
      db.exec(`DROP VIEW IF EXISTS "${view}"`);
      db.exec(viewStatement);
    }
  }).immediate();
}
