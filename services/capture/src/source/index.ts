/** Frame sources and sinks: capture files (pcap, pcapng), pcap writing, per-stream pcap ring. */
export {
  readCaptureFile,
  CaptureFileError,
  MAX_RECORD_BYTES,
  MAX_LISTED_INTERFACES,
  MAX_INTERFACES_PER_SECTION,
  type CaptureFileErrorKind,
  type CaptureFileSummary,
  type CaptureFormat,
  type CaptureInput,
  type CaptureInterface,
  type ReadCaptureFileOptions,
} from './capture-file.ts';
export { PcapWriter, PcapWriterError, type PcapFrame, type PcapResolution, type PcapWriterOptions, type PcapWriterTarget } from './pcap-writer.ts';
export { StreamPcapRing, StreamRingError, type StreamPcapRingOptions, type StreamPcapRingStats, type StreamSnapshotResult } from './stream-ring.ts';
