import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { AppError } from '../errors/index.js';

/*
 * CSV uploads and downloads of the admin API, shared by the external-key CSV (S-28) and the members
 * CSV: formula-safe cells, a streamed UTF-8 / size check, csv-parse with file line numbers, and one
 * collector of row errors reported as 400 `csv_invalid` `{errors: [{row, column, error}], truncated}`.
 */

export interface CsvRowError {
  /** 1-based line of the file where the record starts (the header is line 1). */
  row: number;
  /** The column the error is about, by its header name; null for the whole row. */
  column: string | null;
  error: string;
}

/** A cell Excel or LibreOffice would evaluate (after any run of `'`): exported with one more `'`. */
const FORMULA_TRIGGER_RE = /^'*[=+\-@\t\r]/;
const ESCAPED_FORMULA_RE = /^'+[=+\-@\t\r]/;

/** One CSV cell: formula-injection-safe (see FORMULA_TRIGGER_RE) and RFC 4180 quoted when needed. */
export function csvCell(value: string): string {
  const safe = FORMULA_TRIGGER_RE.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** Undoes csvCell's formula guard on an uploaded cell (exactly inverse: the round trip is lossless). */
export function uncsvCell(value: string): string {
  return ESCAPED_FORMULA_RE.test(value) ? value.slice(1) : value;
}

/** UTF-8 check of a byte stream (fatal decoder), passing the bytes on unchanged; counts bytes. */
class Utf8Guard extends Transform {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  private bytes = 0;
  private newlines = 0;
  /** Set when the stream was refused: the line where the problem is, and what it is. */
  failure: { line: number; kind: 'not_utf8' | 'too_large' } | null = null;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      this.failure = { line: this.newlines + 1, kind: 'too_large' };
      cb(new Error('csv too large'));
      return;
    }
    try {
      this.decoder.decode(chunk, { stream: true });
    } catch {
      const lenient = new TextDecoder('utf-8').decode(chunk);
      const before = lenient.slice(0, Math.max(0, lenient.indexOf('\uFFFD')));
      this.failure = { line: this.newlines + countOf(before, '\n') + 1, kind: 'not_utf8' };
      cb(new Error('csv not utf-8'));
      return;
    }
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.newlines++;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.decoder.decode();
    } catch {
      this.failure = { line: this.newlines + 1, kind: 'not_utf8' };
      cb(new Error('csv not utf-8'));
      return;
    }
    cb();
  }
}

function countOf(s: string, ch: string): number {
  let n = 0;
  for (let i = s.indexOf(ch); i !== -1; i = s.indexOf(ch, i + 1)) n++;
  return n;
}

const LINE_BREAKS_RE = /\r\n|\r|\n/g;

function parseErrorMessage(err: CsvError): string {
  switch (err.code) {
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return 'a quote inside a quoted field must be doubled ("")';
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'a quoted field is not closed';
    case 'CSV_MAX_RECORD_SIZE':
      return 'the row is too long';
    default:
      return 'the row is not valid CSV';
  }
}

/** Row errors of one file, capped: past `maxErrors` the list says `truncated` and reading stops. */
export class CsvErrors {
  readonly errors: CsvRowError[] = [];
  truncated = false;
  /** Set when reading must stop (header unusable, too many rows, error cap reached). */
  stopped = false;

  constructor(private readonly maxErrors: number) {}

  add(row: number, column: string | null, error: string): void {
    if (this.errors.length >= this.maxErrors) {
      this.truncated = true;
      this.stopped = true;
      return;
    }
    this.errors.push({ row, column, error });
  }

  stop(): void {
    this.stopped = true;
  }

  /** 400 `csv_invalid` with every error in file order, if there is any. */
  throwIfAny(): void {
    if (this.errors.length === 0) return;
    const errors = [...this.errors].sort((a, b) => a.row - b.row);
    throw new AppError('csv_invalid', { details: { errors, truncated: this.truncated }, detail: `${errors.length} row errors${this.truncated ? ' (truncated)' : ''}` });
  }
}

/**
 * Reads an uploaded CSV as a stream (csv-parse; a BOM is allowed), handing each non-blank record with
 * the line it starts on to `onRecord`, awaited one at a time (backpressure). Not UTF-8 or not CSV: a
 * row error in `errors`; more than `maxBytes`: 413 `payload_too_large` thrown. Stops reading when
 * `errors.stopped`.
 */
export async function readCsv(input: Readable, options: { maxBytes: number; errors: CsvErrors }, onRecord: (fields: string[], row: number) => Promise<void>): Promise<void> {
  const { errors } = options;
  const guard = new Utf8Guard(options.maxBytes);
  // Blank lines are kept (as ['']) so that this loop can count lines itself.
  const parser = parse({ bom: true, relax_column_count: true, skip_empty_lines: false, max_record_size: 64 * 1024 });
  const onInputError = (err: Error): void => {
    parser.destroy(err);
  };
  input.on('error', onInputError);
  guard.on('error', (err) => parser.destroy(err));
  input.pipe(guard).pipe(parser);
  /** The line the next record starts on. */
  let line = 1;
  /** CRLFs inside quoted fields so far: csv-parse's own line count (used on a parse error) counts each twice. */
  let quotedCrlfs = 0;
  try {
    for await (const fields of parser as AsyncIterable<string[]>) {
      const row = line;
      line++;
      for (const field of fields) {
        if (field.includes('\n') || field.includes('\r')) {
          line += field.match(LINE_BREAKS_RE)?.length ?? 0;
          quotedCrlfs += field.match(/\r\n/g)?.length ?? 0;
        }
      }
      // Spreadsheets write rows of empty cells for blank lines: skip both.
      if (errors.stopped || fields.every((f) => f.trim() === '')) continue;
      await onRecord(fields, row);
    }
  } catch (err) {
    if (guard.failure?.kind === 'too_large') throw new AppError('payload_too_large', { detail: `csv over ${options.maxBytes} bytes` });
    if (guard.failure?.kind === 'not_utf8') errors.add(guard.failure.line, null, 'the file is not UTF-8 text (save it as "CSV UTF-8")');
    // Records parsed just before the error may be dropped with it: take the parser's count then.
    else if (err instanceof CsvError) errors.add(Math.max(line, Number(err.lines) - quotedCrlfs), null, parseErrorMessage(err));
    else throw err;
  } finally {
    input.off('error', onInputError);
    input.unpipe(guard);
    guard.unpipe(parser);
  }
}
