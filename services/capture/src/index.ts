export { CaptureService, SERVICE } from './service.ts';
export { captureConfig, loadCaptureConfig, replaySpeed, type CaptureConfig } from './config.ts';
export { CapturePipeline, STREAM_DISSECTORS, DATAGRAM_DISSECTORS, type PacketSummary, type PipelineOptions } from './pipeline.ts';
export { ItemBuilder, type CapturedItem } from './items/builder.ts';
export { LiveCapture, LiveCaptureError, listDevices } from './live/cap-source.ts';
export * from './types.ts';
export { readCaptureFile, CaptureFileError } from './source/index.ts';
