/**
 * Loads the QuickJS WebAssembly module once per process (per thread). The
 * release-sync variant is the fastest build without asyncify overhead; the
 * engine never needs to suspend the VM on a host promise.
 */
import { newQuickJSWASMModuleFromVariant, type QuickJSWASMModule } from 'quickjs-emscripten-core';
import releaseSync from '@jitl/quickjs-wasmfile-release-sync';

let modulePromise: Promise<QuickJSWASMModule> | null = null;

export function loadQuickJS(): Promise<QuickJSWASMModule> {
  modulePromise ??= newQuickJSWASMModuleFromVariant(releaseSync as unknown as Parameters<typeof newQuickJSWASMModuleFromVariant>[0]);
  return modulePromise;
}
