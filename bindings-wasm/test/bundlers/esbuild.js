// The esbuild line of the README: the module's URL from the package's exports map, emitted
// by `--loader:.wasm=file`, passed to init().
import wasmUrl from '@isec/wasm/isec_wasm_bg.wasm'
import { roundTrip } from './app.js'

roundTrip(wasmUrl)
