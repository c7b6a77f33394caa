export { Decoder, DecoderOptionsError, type DecoderOptions } from './decoder.ts';
export { newDecoderStats, type DecoderStats } from './stats.ts';
export { formatAddress, hashFlow, AddressRangeError } from './addr.ts';
