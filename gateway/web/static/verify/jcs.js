/* traceseal verification page: strict JSON reading and RFC 8785 (JCS) canonical bytes.
 *
 * docs/proof-format.md §1, §2, §9.1. No dependencies; a classic script (works from file://)
 * that defines the global `TraceSealJCS`.
 *
 * Values produced by parseStrict():
 *   null, true/false, strings, arrays                        as in JavaScript
 *   objects                                                  null-prototype objects (so a member
 *                                                            named "__proto__" is just a member)
 *   integers written without fraction/exponent, |n| ≤ 2^53−1 JavaScript numbers (exact)
 *   integers written without fraction/exponent, larger       JInt  {text, big}: an integer, but
 *                                                            with no JCS form (out of range)
 *   numbers written with a fraction or an exponent           JFloat {text, value}: never an
 *                                                            integer (§1 decides by written form)
 *
 * A bundle is UNREADABLE (ReadError) when it is not JSON, starts with a byte order mark,
 * repeats a member name in any object, or uses NaN / Infinity / -Infinity (§9.1). The grammar
 * is RFC 8259 exactly as the reference verifier's parser (Python's json module) reads it,
 * including its 4300-digit limit on integer literals.
 */
(function (root) {
  "use strict";

  var MAX_SAFE = 9007199254740991; // 2^53 - 1
  var PY_INT_DIGITS = 4300; // Python refuses longer integer literals (the CLI exits 2)

  function ReadError(message, pos) {
    this.name = "ReadError";
    this.message = message;
    this.pos = pos;
  }
  ReadError.prototype = Object.create(Error.prototype);
  ReadError.prototype.constructor = ReadError;

  function MalformedError(message) {
    this.name = "MalformedError";
    this.message = message;
  }
  MalformedError.prototype = Object.create(Error.prototype);
  MalformedError.prototype.constructor = MalformedError;

  /** An integer literal outside ±(2^53−1): an integer by its written form, but not signable. */
  function JInt(text) {
    this.text = text;
    this.big = BigInt(text);
  }
  JInt.prototype.toString = function () { return this.text; };

  /** A number written with a fraction or an exponent: never an integer (§1). */
  function JFloat(text) {
    this.text = text;
    this.value = Number(text);
  }
  JFloat.prototype.toString = function () { return this.text; };

  function isObj(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof JInt) && !(v instanceof JFloat);
  }

  function has(o, k) {
    return Object.prototype.hasOwnProperty.call(o, k);
  }

  /** §1 "integer": written without a fraction or an exponent (any size), never a boolean. */
  function isInt(v) {
    return (typeof v === "number" && Number.isInteger(v)) || v instanceof JInt;
  }

  /** An integer that arithmetic here can use exactly (the only kind a kept record or header holds). */
  function isSafeInt(v) {
    return typeof v === "number" && Number.isSafeInteger(v);
  }

  // ------------------------------------------------------------------ strict parser
  function parseStrict(text) {
    if (typeof text !== "string") throw new ReadError("not text", 0);
    if (text.charCodeAt(0) === 0xfeff) throw new ReadError("starts with a byte order mark (U+FEFF)", 0);
    var i = 0;
    var n = text.length;
    var depth = 0;

    function fail(msg) {
      throw new ReadError(msg + " at character " + i, i);
    }
    function ws() {
      while (i < n) {
        var c = text.charCodeAt(i);
        if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
        else break;
      }
    }
    function value() {
      ws();
      if (i >= n) fail("unexpected end of input");
      var c = text[i];
      if (c === "{") return object();
      if (c === "[") return array();
      if (c === '"') return string();
      if (c === "-" || (c >= "0" && c <= "9")) {
        if (text.startsWith("-Infinity", i)) fail("-Infinity is not JSON");
        return number();
      }
      if (text.startsWith("true", i)) { i += 4; return true; }
      if (text.startsWith("false", i)) { i += 5; return false; }
      if (text.startsWith("null", i)) { i += 4; return null; }
      if (text.startsWith("NaN", i)) fail("NaN is not JSON");
      if (text.startsWith("Infinity", i)) fail("Infinity is not JSON");
      fail("expecting a value");
    }
    function enter() {
      depth++;
      if (depth > 900) fail("nesting too deep");
    }
    function object() {
      enter();
      i++; // {
      var o = Object.create(null);
      var seen = new Set();
      ws();
      if (text[i] === "}") { i++; depth--; return o; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expecting a member name in double quotes");
        var k = string();
        if (seen.has(k)) fail("duplicate member name " + JSON.stringify(k));
        seen.add(k);
        ws();
        if (text[i] !== ":") fail("expecting ':'");
        i++;
        var v = value();
        Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") { i++; depth--; return o; }
        fail("expecting ',' or '}'");
      }
    }
    function array() {
      enter();
      i++; // [
      var a = [];
      ws();
      if (text[i] === "]") { i++; depth--; return a; }
      for (;;) {
        a.push(value());
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") { i++; depth--; return a; }
        fail("expecting ',' or ']'");
      }
    }
    function hex4(at) {
      var h = text.substr(at, 4);
      if (!/^[0-9a-fA-F]{4}$/.test(h)) { i = at; fail("invalid \\u escape"); }
      return parseInt(h, 16);
    }
    function string() {
      i++; // opening quote
      var out = "";
      var start = i;
      for (;;) {
        if (i >= n) fail("unterminated string");
        var c = text.charCodeAt(i);
        if (c === 0x22) { out += text.slice(start, i); i++; return out; }
        if (c < 0x20) fail("invalid control character in a string");
        if (c !== 0x5c) { i++; continue; }
        out += text.slice(start, i);
        var e = text[i + 1];
        if (e === '"') out += '"';
        else if (e === "\\") out += "\\";
        else if (e === "/") out += "/";
        else if (e === "b") out += "\b";
        else if (e === "f") out += "\f";
        else if (e === "n") out += "\n";
        else if (e === "r") out += "\r";
        else if (e === "t") out += "\t";
        else if (e === "u") {
          var cu = hex4(i + 2);
          out += String.fromCharCode(cu); // pairs of escapes join into one code point by themselves
          i += 6;
          start = i;
          continue;
        } else fail("invalid escape");
        i += 2;
        start = i;
      }
    }
    function number() {
      var s = i;
      if (text[i] === "-") i++;
      if (text[i] === "0") i++;
      else if (text[i] >= "1" && text[i] <= "9") { while (text[i] >= "0" && text[i] <= "9") i++; }
      else fail("expecting a value");
      var intEnd = i;
      var isFloat = false;
      if (text[i] === "." && text[i + 1] >= "0" && text[i + 1] <= "9") {
        isFloat = true;
        i++;
        while (text[i] >= "0" && text[i] <= "9") i++;
      }
      if ((text[i] === "e" || text[i] === "E")) {
        var j = i + 1;
        if (text[j] === "+" || text[j] === "-") j++;
        if (text[j] >= "0" && text[j] <= "9") {
          isFloat = true;
          i = j;
          while (text[i] >= "0" && text[i] <= "9") i++;
        }
      }
      var lit = text.slice(s, i);
      if (isFloat) return new JFloat(lit);
      var digits = intEnd - s - (text[s] === "-" ? 1 : 0);
      if (digits > PY_INT_DIGITS) fail("integer literal longer than " + PY_INT_DIGITS + " digits");
      var num = Number(lit);
      if (Number.isSafeInteger(num) && Math.abs(num) <= MAX_SAFE && digits <= 16) return num === 0 ? 0 : num;
      var big = BigInt(lit);
      if (big >= -BigInt(MAX_SAFE) && big <= BigInt(MAX_SAFE)) return Number(big) === 0 ? 0 : Number(big);
      return new JInt(lit);
    }

    var v = value();
    ws();
    if (i < n) fail("extra data after the JSON value");
    return v;
  }

  /** Bytes → text the way the reference verifier reads a file: strict UTF-8, BOM kept (then refused). */
  function decodeUtf8(bytes) {
    try {
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch (e) {
      throw new ReadError("the file is not UTF-8 text", 0);
    }
  }

  // ------------------------------------------------------------------ JCS
  function hasLoneSurrogate(s) {
    for (var k = 0; k < s.length; k++) {
      var c = s.charCodeAt(k);
      if (c >= 0xd800 && c <= 0xdbff) {
        var d = s.charCodeAt(k + 1);
        if (d >= 0xdc00 && d <= 0xdfff) { k++; continue; }
        return true;
      }
      if (c >= 0xdc00 && c <= 0xdfff) return true;
    }
    return false;
  }

  function jcsString(s, path) {
    if (hasLoneSurrogate(s)) throw new MalformedError(path + ": string with an unpaired surrogate");
    var out = '"';
    for (var k = 0; k < s.length; k++) {
      var c = s.charCodeAt(k);
      if (c === 0x22) out += '\\"';
      else if (c === 0x5c) out += "\\\\";
      else if (c === 0x08) out += "\\b";
      else if (c === 0x09) out += "\\t";
      else if (c === 0x0a) out += "\\n";
      else if (c === 0x0c) out += "\\f";
      else if (c === 0x0d) out += "\\r";
      else if (c < 0x20) out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
      else out += s[k];
    }
    return out + '"';
  }

  function cmpUtf16(a, b) {
    // JavaScript string comparison is by UTF-16 code units, as RFC 8785 §3.2.3 sorts.
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function jcsValue(v, path) {
    if (v === null) return "null";
    if (v === true) return "true";
    if (v === false) return "false";
    if (typeof v === "string") return jcsString(v, path);
    if (typeof v === "number") {
      if (!Number.isSafeInteger(v)) throw new MalformedError(path + ": number " + v + " is not an integer within ±(2^53−1)");
      return String(v === 0 ? 0 : v);
    }
    if (v instanceof JInt) throw new MalformedError(path + ": integer " + v.text + " outside ±(2^53−1)");
    if (v instanceof JFloat) throw new MalformedError(path + ": number " + v.text + " has a fraction or an exponent; signed data holds integers only");
    if (Array.isArray(v)) {
      var parts = [];
      for (var k = 0; k < v.length; k++) parts.push(jcsValue(v[k], path + "[" + k + "]"));
      return "[" + parts.join(",") + "]";
    }
    if (typeof v === "object") {
      var keys = Object.keys(v).sort(cmpUtf16);
      var ps = [];
      for (var j = 0; j < keys.length; j++) {
        ps.push(jcsString(keys[j], path) + ":" + jcsValue(v[keys[j]], path + "." + keys[j]));
      }
      return "{" + ps.join(",") + "}";
    }
    throw new MalformedError(path + ": " + typeof v + " cannot be canonicalised");
  }

  /** RFC 8785 text of v; throws MalformedError when v has no JCS form under §1/§2. */
  function canonicalText(v) {
    return jcsValue(v, "$");
  }

  /** RFC 8785 bytes (UTF-8) of v. */
  function canonical(v) {
    return new TextEncoder().encode(canonicalText(v));
  }

  /** JSON equality of parsed values (§9.3 step 9): true is not 1, 1.0 is not 1. */
  function jsonEq(a, b) {
    if (a === b) return true;
    if (a instanceof JInt && b instanceof JInt) return a.big === b.big;
    if (a instanceof JFloat && b instanceof JFloat) return a.text === b.text;
    if (Array.isArray(a) && Array.isArray(b)) {
      if (a.length !== b.length) return false;
      for (var k = 0; k < a.length; k++) if (!jsonEq(a[k], b[k])) return false;
      return true;
    }
    if (isObj(a) && isObj(b)) {
      var ka = Object.keys(a), kb = Object.keys(b);
      if (ka.length !== kb.length) return false;
      for (var j = 0; j < ka.length; j++) {
        if (!has(b, ka[j]) || !jsonEq(a[ka[j]], b[ka[j]])) return false;
      }
      return true;
    }
    return false;
  }

  /** A short human rendering of a parsed value (for messages). */
  function show(v, max) {
    max = max || 80;
    var s;
    try {
      s = JSON.stringify(v, function (k, x) {
        if (x instanceof JInt || x instanceof JFloat) return "@@" + x.text + "@@";
        return x;
      });
      s = s === undefined ? String(v) : s.replace(/"@@([^@"]*)@@"/g, "$1");
    } catch (e) {
      s = String(v);
    }
    return s.length > max ? s.slice(0, max - 1) + "…" : s;
  }

  root.TraceSealJCS = {
    ReadError: ReadError,
    MalformedError: MalformedError,
    JInt: JInt,
    JFloat: JFloat,
    MAX_SAFE: MAX_SAFE,
    parseStrict: parseStrict,
    decodeUtf8: decodeUtf8,
    canonical: canonical,
    canonicalText: canonicalText,
    jsonEq: jsonEq,
    isInt: isInt,
    isSafeInt: isSafeInt,
    isObj: isObj,
    has: has,
    show: show,
  };
})(typeof self !== "undefined" ? self : globalThis);
