// A bench record with neutral run facts, for the tests of the report: each test sets what it checks.
import type { BenchRecord } from '../../bench/report.js';

export function testRecord(fields: Partial<BenchRecord> & Pick<BenchRecord, 'cases'>): BenchRecord {
  return {
    adapter: 'test adapter',
    adapterSlug: 'test-adapter',
    isSoftware: true,
    hasTimestamps: false,
    versions: { node: process.version, webgpu: '0', engine: '0' },
    date: new Date(0).toISOString(),
    mode: 'quick',
    sizes: 'full',
    cpus: 2,
    load: { start: [0, 0, 0], end: [0, 0, 0] },
    method: 'none',
    seconds: 0,
    partial: true,
    ...fields,
  };
}
