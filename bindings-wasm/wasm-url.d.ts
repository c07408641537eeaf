// `import wasmUrl from '@isec/wasm/isec_wasm_bg.wasm'` (the package's exports map): the
// module's URL as a bundler's file loader gives it (esbuild `--loader:.wasm=file`), for
// `init(wasmUrl)`. README, "Bundlers".
declare const url: string
export default url
