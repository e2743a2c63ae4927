const r = () => (process.memoryUsage().rss/1048576).toFixed(1);
const a = r();
const mod = new WebAssembly.Module(require('undici/lib/llhttp/llhttp_simd-wasm.js'));
const b = r();
setTimeout(() => console.log(a, b, r()), 500);
