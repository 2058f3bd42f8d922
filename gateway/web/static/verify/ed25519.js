/* traceseal verification page: plain-JavaScript SHA-256 and Ed25519 verification (RFC 8032 §5.1.7).
 *
 * Used ONLY when the browser withholds WebCrypto (crypto.subtle), which browsers do for pages
 * served over plain http from another machine — e.g. a gateway dashboard on the LAN. With
 * WebCrypto present (file://, https://, http://localhost) verify.js never calls this.
 * Defines the global `TraceSealEd25519` {sha256(bytes), sha512(bytes), verify(pub, sig, msg)}.
 * Verification is cofactorless with canonical S (< L) and the computed R compared by its
 * encoding, as OpenSSL and BoringSSL do.
 */
(function (root) {
  "use strict";

  // ------------------------------------------------------------------ SHA-256
  var K256 = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  function pad(msg, blockLen, lenBytes) {
    var bitLen = msg.length * 8;
    var total = Math.ceil((msg.length + 1 + lenBytes) / blockLen) * blockLen;
    var out = new Uint8Array(total);
    out.set(msg);
    out[msg.length] = 0x80;
    var hi = Math.floor(bitLen / 0x100000000), lo = bitLen >>> 0;
    out[total - 8] = hi >>> 24; out[total - 7] = hi >>> 16; out[total - 6] = hi >>> 8; out[total - 5] = hi;
    out[total - 4] = lo >>> 24; out[total - 3] = lo >>> 16; out[total - 2] = lo >>> 8; out[total - 1] = lo;
    return out;
  }

  function sha256(msg) {
    var m = pad(msg, 64, 8);
    var h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    var w = new Uint32Array(64);
    for (var off = 0; off < m.length; off += 64) {
      for (var i = 0; i < 16; i++) {
        w[i] = (m[off + 4 * i] << 24) | (m[off + 4 * i + 1] << 16) | (m[off + 4 * i + 2] << 8) | m[off + 4 * i + 3];
      }
      for (i = 16; i < 64; i++) {
        var x = w[i - 15], y = w[i - 2];
        var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
      for (i = 0; i < 64; i++) {
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var ch = (e & f) ^ (~e & g);
        var t1 = (hh + S1 + ch + K256[i] + w[i]) >>> 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var maj = (a & b) ^ (a & c) ^ (b & c);
        var t2 = (S0 + maj) >>> 0;
        hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    var out = new Uint8Array(32);
    for (var j = 0; j < 8; j++) { out[4 * j] = h[j] >>> 24; out[4 * j + 1] = h[j] >>> 16; out[4 * j + 2] = h[j] >>> 8; out[4 * j + 3] = h[j]; }
    return out;
  }

  // ------------------------------------------------------------------ SHA-512 (BigInt words)
  var M64 = (1n << 64n) - 1n;
  var K512 = [
    "428a2f98d728ae22", "7137449123ef65cd", "b5c0fbcfec4d3b2f", "e9b5dba58189dbbc", "3956c25bf348b538", "59f111f1b605d019",
    "923f82a4af194f9b", "ab1c5ed5da6d8118", "d807aa98a3030242", "12835b0145706fbe", "243185be4ee4b28c", "550c7dc3d5ffb4e2",
    "72be5d74f27b896f", "80deb1fe3b1696b1", "9bdc06a725c71235", "c19bf174cf692694", "e49b69c19ef14ad2", "efbe4786384f25e3",
    "0fc19dc68b8cd5b5", "240ca1cc77ac9c65", "2de92c6f592b0275", "4a7484aa6ea6e483", "5cb0a9dcbd41fbd4", "76f988da831153b5",
    "983e5152ee66dfab", "a831c66d2db43210", "b00327c898fb213f", "bf597fc7beef0ee4", "c6e00bf33da88fc2", "d5a79147930aa725",
    "06ca6351e003826f", "142929670a0e6e70", "27b70a8546d22ffc", "2e1b21385c26c926", "4d2c6dfc5ac42aed", "53380d139d95b3df",
    "650a73548baf63de", "766a0abb3c77b2a8", "81c2c92e47edaee6", "92722c851482353b", "a2bfe8a14cf10364", "a81a664bbc423001",
    "c24b8b70d0f89791", "c76c51a30654be30", "d192e819d6ef5218", "d69906245565a910", "f40e35855771202a", "106aa07032bbd1b8",
    "19a4c116b8d2d0c8", "1e376c085141ab53", "2748774cdf8eeb99", "34b0bcb5e19b48a8", "391c0cb3c5c95a63", "4ed8aa4ae3418acb",
    "5b9cca4f7763e373", "682e6ff3d6b2b8a3", "748f82ee5defb2fc", "78a5636f43172f60", "84c87814a1f0ab72", "8cc702081a6439ec",
    "90befffa23631e28", "a4506cebde82bde9", "bef9a3f7b2c67915", "c67178f2e372532b", "ca273eceea26619c", "d186b8c721c0c207",
    "eada7dd6cde0eb1e", "f57d4f7fee6ed178", "06f067aa72176fba", "0a637dc5a2c898a6", "113f9804bef90dae", "1b710b35131c471b",
    "28db77f523047d84", "32caab7b40c72493", "3c9ebe0a15c9bebc", "431d67c49c100d4c", "4cc5d4becb3e42b6", "597f299cfc657e2a",
    "5fcb6fab3ad6faec", "6c44198c4a475817",
  ].map(function (h) { return BigInt("0x" + h); });

  function rotr(x, n) { return ((x >> n) | (x << (64n - n))) & M64; }

  function sha512(msg) {
    var m = pad(msg, 128, 16);
    var h = ["6a09e667f3bcc908", "bb67ae8584caa73b", "3c6ef372fe94f82b", "a54ff53a5f1d36f1",
      "510e527fade682d1", "9b05688c2b3e6c1f", "1f83d9abfb41bd6b", "5be0cd19137e2179"].map(function (x) { return BigInt("0x" + x); });
    var w = new Array(80);
    for (var off = 0; off < m.length; off += 128) {
      for (var i = 0; i < 16; i++) {
        var v = 0n;
        for (var k = 0; k < 8; k++) v = (v << 8n) | BigInt(m[off + 8 * i + k]);
        w[i] = v;
      }
      for (i = 16; i < 80; i++) {
        var s0 = rotr(w[i - 15], 1n) ^ rotr(w[i - 15], 8n) ^ (w[i - 15] >> 7n);
        var s1 = rotr(w[i - 2], 19n) ^ rotr(w[i - 2], 61n) ^ (w[i - 2] >> 6n);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) & M64;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
      for (i = 0; i < 80; i++) {
        var S1 = rotr(e, 14n) ^ rotr(e, 18n) ^ rotr(e, 41n);
        var ch = (e & f) ^ (~e & M64 & g);
        var t1 = (hh + S1 + ch + K512[i] + w[i]) & M64;
        var S0 = rotr(a, 28n) ^ rotr(a, 34n) ^ rotr(a, 39n);
        var maj = (a & b) ^ (a & c) ^ (b & c);
        var t2 = (S0 + maj) & M64;
        hh = g; g = f; f = e; e = (d + t1) & M64; d = c; c = b; b = a; a = (t1 + t2) & M64;
      }
      h = [h[0] + a, h[1] + b, h[2] + c, h[3] + d, h[4] + e, h[5] + f, h[6] + g, h[7] + hh].map(function (x) { return x & M64; });
    }
    var out = new Uint8Array(64);
    for (var j = 0; j < 8; j++) for (var q = 0; q < 8; q++) out[8 * j + q] = Number((h[j] >> BigInt(56 - 8 * q)) & 0xffn);
    return out;
  }

  // ------------------------------------------------------------------ edwards25519
  var P = (1n << 255n) - 19n;
  var L = (1n << 252n) + 27742317777372353535851937790883648493n;
  var D = mod(-121665n * inv(121666n));
  var SQRT_M1 = pow(2n, (P - 1n) / 4n);

  function mod(a, m) { m = m || P; var r = a % m; return r >= 0n ? r : r + m; }
  function pow(b, e) {
    var r = 1n; b = mod(b);
    while (e > 0n) { if (e & 1n) r = r * b % P; b = b * b % P; e >>= 1n; }
    return r;
  }
  function inv(a) { return pow(a, P - 2n); }

  function leInt(bytes) {
    var v = 0n;
    for (var i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
    return v;
  }

  // extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z
  var ZERO = [0n, 1n, 1n, 0n];
  function add(p, q) {
    var a = mod((p[1] - p[0]) * (q[1] - q[0])), b = mod((p[1] + p[0]) * (q[1] + q[0]));
    var c = mod(2n * p[3] * q[3] * D), d = mod(2n * p[2] * q[2]);
    var e = b - a, f = d - c, g = d + c, h = b + a;
    return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
  }
  function dbl(p) { return add(p, p); }
  function mul(p, s) {
    var r = ZERO, q = p;
    while (s > 0n) { if (s & 1n) r = add(r, q); q = dbl(q); s >>= 1n; }
    return r;
  }
  function neg(p) { return [mod(-p[0]), p[1], p[2], mod(-p[3])]; }

  function decode(bytes) {
    if (bytes.length !== 32) return null;
    var b = Uint8Array.from(bytes);
    var sign = b[31] >> 7;
    b[31] &= 0x7f;
    var y = leInt(b);
    if (y >= P) return null;
    var y2 = y * y % P;
    var u = mod(y2 - 1n), v = mod(D * y2 + 1n);
    var x = mod(u * pow(v, 3n) % P * pow(u * pow(v, 7n), (P - 5n) / 8n));
    var vx2 = mod(v * x * x);
    if (vx2 !== u) {
      if (vx2 === mod(-u)) x = mod(x * SQRT_M1);
      else return null;
    }
    if (x === 0n && sign === 1) return null;
    if (Number(x & 1n) !== sign) x = mod(-x);
    return [x, y, 1n, mod(x * y)];
  }

  function encode(p) {
    var zi = inv(p[2]);
    var x = mod(p[0] * zi), y = mod(p[1] * zi);
    var out = new Uint8Array(32);
    var v = y;
    for (var i = 0; i < 32; i++) { out[i] = Number(v & 0xffn); v >>= 8n; }
    if (x & 1n) out[31] |= 0x80;
    return out;
  }

  var BASE = decode(new Uint8Array([0x58].concat(new Array(31).fill(0x66))));

  function concat(a, b, c) {
    var out = new Uint8Array(a.length + b.length + c.length);
    out.set(a); out.set(b, a.length); out.set(c, a.length + b.length);
    return out;
  }

  /** RFC 8032 §5.1.7 verify; false on any malformed input. */
  function verify(pub, sig, msg) {
    if (!(pub instanceof Uint8Array) || pub.length !== 32 || !(sig instanceof Uint8Array) || sig.length !== 64) return false;
    var A = decode(pub);
    if (!A) return false;
    var Rb = sig.subarray(0, 32);
    var S = leInt(sig.subarray(32));
    if (S >= L) return false;
    var k = mod(leInt(sha512(concat(Rb, pub, msg))), L);
    var Rc = add(mul(BASE, S), neg(mul(A, k)));
    var enc = encode(Rc);
    for (var i = 0; i < 32; i++) if (enc[i] !== Rb[i]) return false;
    return true;
  }

  root.TraceSealEd25519 = { sha256: sha256, sha512: sha512, verify: verify };
})(typeof self !== "undefined" ? self : globalThis);
