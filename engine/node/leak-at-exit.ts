// SMKD_LEAK_REPORT=1: track every tensor from the start, and print what is still alive when the
// process exits (engine/leak-report.ts). Node only: a page calls trackTensors() and leakReport() itself.
import { leakReport, trackTensors } from '../leak-report.js';

if (/^(1|true|yes)$/i.test(process.env.SMKD_LEAK_REPORT ?? '')) {
  trackTensors();
  process.on('exit', () => {
    const report = leakReport();
    if (report) console.error(`SMKD_LEAK_REPORT: ${report}`);
  });
}
