/* traceseal verification page: the nine steps of docs/proof-format.md §9, in the browser.
 *
 * DOM-free; a classic script that defines the global `TraceSealVerify`. Needs jcs.js first.
 * Cryptography: WebCrypto (Ed25519 verify, SHA-256). When the page is served over plain
 * http from another machine, browsers withhold WebCrypto; ed25519.js (optional) then
 * provides the same two functions in plain JavaScript.
 *
 *   TraceSealVerify.verifyText(text, opts)  -> Promise<{readable, error?, report?, details?}>
 *   TraceSealVerify.verifyBundle(value, opts) -> Promise<{report, details}>
 *
 * opts: {gatewayKey, ledgerKey, rpcUrl, chainId, sender, confirmations, fetch}
 * report has the shape of `traceseal verify --json`: {ok, steps:[{step,name,ok,checked,
 * failures,notes}], summary}. The step numbers, names and pass/fail decisions follow the
 * reference verifier (ledger_client/verify.py); where it departs from the normative text
 * (docs/proof-format.md §9.5) this follows the text.
 */
(function (root) {
  "use strict";
  var J = root.TraceSealJCS;

  var FORMAT = "traceseal-bundle/1";
  // §7.4: an anchor time outside 2000-01-01..2200-01-01 is refused (step 6), as by traceseal verify
  var ANCHOR_TIME_MIN_MS = 946684800000, ANCHOR_TIME_MAX_MS = 7258118400000;
  var ZERO_HASH = "0000000000000000000000000000000000000000000000000000000000000000";
  var STEPS = [
    [1, "format"], [2, "record-sigs"], [3, "header-sigs"], [4, "inclusion"], [5, "chain"],
    [6, "anchors"], [7, "coverage"], [8, "anchor-time"], [9, "selection"],
  ];
  var enc = new TextEncoder();
  var RECORD_DOMAIN = enc.encode("traceseal/record/v1\n");
  var HEADER_DOMAIN = enc.encode("traceseal/header/v1\n");
  var LEDGER_DOMAIN = enc.encode("traceseal/ledger/v1\n");
  var ROTATE_DOMAIN = enc.encode("traceseal/rotate/v1\n");
  var TAG_HEX = "0x54534c31"; // "TSL1"

  var HEX64 = /^[0-9a-f]{64}$/;
  var HEX128 = /^[0-9a-f]{128}$/;
  var HEX64_ANYCASE = /^[0-9a-fA-F]{64}$/;

  var RECORD_FIELDS = { v: "int", gateway: "str", seq: "int", time_ms: "int", clock_synced: "bool", type: "str" };
  var ROTATION_FIELDS = {
    v: "int", gateway: "str", seq: "int", time_ms: "int", clock_synced: "bool", type: "str",
    old_key: "str", new_key: "str", new_key_sig: "str", last_block: "int",
  };
  var HEADER_FIELDS = {
    v: "int", gateway: "str", block: "int", first_seq: "int", last_seq: "int", size: "int", root: "str",
    prev: "str", first_time_ms: "int", last_time_ms: "int", sealed_ms: "int", clock_synced: "bool", key: "str",
  };

  // ------------------------------------------------------------------ crypto
  function subtle() {
    return root.crypto && root.crypto.subtle ? root.crypto.subtle : null;
  }

  function cryptoBackend() {
    if (subtle()) return "webcrypto";
    if (root.TraceSealEd25519) return "javascript";
    return null;
  }

  function hexToBytes(h) {
    var out = new Uint8Array(h.length / 2);
    for (var k = 0; k < out.length; k++) out[k] = parseInt(h.substr(2 * k, 2), 16);
    return out;
  }

  function bytesToHex(b) {
    var s = "";
    for (var k = 0; k < b.length; k++) s += (b[k] < 16 ? "0" : "") + b[k].toString(16);
    return s;
  }

  function concat() {
    var len = 0, k;
    for (k = 0; k < arguments.length; k++) len += arguments[k].length;
    var out = new Uint8Array(len), off = 0;
    for (k = 0; k < arguments.length; k++) { out.set(arguments[k], off); off += arguments[k].length; }
    return out;
  }

  function sha256(bytes) {
    var s = subtle();
    if (s) return s.digest("SHA-256", bytes).then(function (d) { return new Uint8Array(d); });
    return Promise.resolve(root.TraceSealEd25519.sha256(bytes));
  }

  var keyCache = new Map();

  /** Ed25519 verify (RFC 8032, pure). Any error (a key that is not a point, …) is "does not verify". */
  function ed25519Verify(pubHex, sigHex, message) {
    var s = subtle();
    if (!s) {
      try {
        return Promise.resolve(root.TraceSealEd25519.verify(hexToBytes(pubHex), hexToBytes(sigHex), message));
      } catch (e) {
        return Promise.resolve(false);
      }
    }
    var kp = keyCache.get(pubHex);
    if (!kp) {
      kp = s.importKey("raw", hexToBytes(pubHex), { name: "Ed25519" }, false, ["verify"]);
      keyCache.set(pubHex, kp);
    }
    return kp.then(function (key) {
      return s.verify({ name: "Ed25519" }, key, hexToBytes(sigHex), message);
    }).then(function (ok) { return ok === true; }, function () { return false; });
  }

  /** A signature field: exactly 128 lowercase hex characters, then Ed25519 (keys.py verify_sig). */
  function verifySig(pubHex, sig, message) {
    if (typeof sig !== "string" || !HEX128.test(sig)) return Promise.resolve(false);
    return ed25519Verify(pubHex, sig, message);
  }

  function hashLeaf(data) { return sha256(concat(new Uint8Array([0]), data)); }
  function hashChildren(l, r) { return sha256(concat(new Uint8Array([1]), l, r)); }

  function eqBytes(a, b) {
    if (a.length !== b.length) return false;
    for (var k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
    return true;
  }

  /** §5, RFC 9162 §2.1.3.2. Resolves to null when the proof holds, else the reason. */
  async function verifyInclusion(index, size, leaf, proof, rootHash) {
    if (size <= 0 || !(index >= 0 && index < size)) return "leaf index " + index + " out of range for tree size " + size;
    var fn = index, sn = size - 1, r = leaf;
    for (var k = 0; k < proof.length; k++) {
      var p = proof[k];
      if (sn === 0) return "wrong proof size " + proof.length + ": too long for index " + index + " in size " + size;
      if (fn % 2 === 1 || fn === sn) {
        r = await hashChildren(p, r);
        if (fn % 2 === 0) {
          while (!(fn % 2 === 1 || fn === 0)) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await hashChildren(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) return "wrong proof size " + proof.length + ": too short for index " + index + " in size " + size;
    if (!eqBytes(r, rootHash)) return "calculated root " + bytesToHex(r) + " does not match expected root " + bytesToHex(rootHash);
    return null;
  }

  // ------------------------------------------------------------------ helpers
  var isInt = J.isInt, isObj = J.isObj, has = J.has, show = J.show;

  function get(o, k) {
    return isObj(o) && has(o, k) ? o[k] : undefined;
  }

  function typeName(v) {
    if (v === null) return "null";
    if (v === undefined) return "absent";
    if (Array.isArray(v)) return "array";
    if (v instanceof J.JInt || v instanceof J.JFloat || typeof v === "number") return "number";
    if (typeof v === "object") return "object";
    return typeof v;
  }

  function hasType(v, t) {
    if (t === "int") return isInt(v);
    if (t === "bool") return typeof v === "boolean";
    return typeof v === "string";
  }

  function badFields(o, fields) {
    var bad = [];
    Object.keys(fields).forEach(function (k) {
      if (!has(o, k)) bad.push(k + " missing");
      else if (!hasType(o[k], fields[k])) bad.push(k + "=" + show(o[k], 40));
    });
    return bad;
  }

  function canonicalOrError(o) {
    try {
      return { data: J.canonical(o) };
    } catch (e) {
      return { error: e && e.message ? e.message : String(e) };
    }
  }

  function iso(ms) {
    try {
      return new Date(ms).toISOString();
    } catch (e) {
      return String(ms);
    }
  }

  /** Python bytes.fromhex as §9.2 uses it for a pinned key: ASCII whitespace between byte pairs is skipped. */
  function fromHexLenient(s) {
    var out = [], k = 0;
    var isSpace = function (c) { return c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\x0b" || c === "\f"; };
    var hx = /[0-9a-fA-F]/;
    while (k < s.length) {
      if (isSpace(s[k])) { k++; continue; }
      if (!hx.test(s[k]) || k + 1 >= s.length || !hx.test(s[k + 1])) return null;
      out.push(parseInt(s.substr(k, 2), 16));
      k += 2;
    }
    return new Uint8Array(out);
  }

  function newStep(n, name) {
    return { step: n, name: name, ok: true, checked: 0, failures: [], notes: [] };
  }
  function fail(s, msg) {
    s.failures.push(msg);
    s.ok = false;
  }

  // ------------------------------------------------------------------ anchors
  function checkLocalAnchor(a, hhHex, opts) {
    // §7.2 items 1-7 (item 8, entry.gateway/entry.block, is checked by the caller)
    var entry = get(a, "entry");
    if (!isObj(entry) || !has(a, "sig") || !has(a, "ledger_key") || !has(entry, "time_ms")) {
      return Promise.resolve({ error: "local anchor lacks one of entry, sig, ledger_key, entry.time_ms" });
    }
    var key = a.ledger_key, sig = a.sig;
    if (opts.ledgerKey != null && (typeof key !== "string" || key.toLowerCase() !== String(opts.ledgerKey).toLowerCase())) {
      return Promise.resolve({ error: "ledger key " + show(key, 20) + " is not the pinned ledger key " + String(opts.ledgerKey).slice(0, 16) + "…" });
    }
    if (get(entry, "header_hash") !== hhHex) {
      return Promise.resolve({ error: "anchor names header hash " + show(get(entry, "header_hash"), 20) + ", want " + hhHex.slice(0, 16) + "…" });
    }
    var c = canonicalOrError(entry);
    if (c.error) return Promise.resolve({ error: "anchor entry unreadable: " + c.error });
    if (typeof key !== "string" || !HEX64_ANYCASE.test(key)) {
      return Promise.resolve({ error: "anchor entry unreadable: ledger_key " + show(key, 20) + " is not 32 bytes of hex" });
    }
    return verifySig(key.toLowerCase(), sig, concat(LEDGER_DOMAIN, c.data)).then(function (ok) {
      if (!ok) return { error: "ledger signature does not verify for entry " + show(get(entry, "index")) };
      var t = entry.time_ms;
      if (!J.isSafeInt(t)) return { error: "anchor time " + show(t) + " is not an integer" };
      return { time: t };
    });
  }

  function rpcQuantity(v, what, url) {
    if (typeof v === "number" && Number.isInteger(v)) return v;
    if (typeof v === "string") {
      var t = v.trim();
      if (/^[+-]?0[xX][0-9a-fA-F]+(_?[0-9a-fA-F])*$/.test(t)) return Number(BigInt(t.replace(/_/g, "").replace(/^\+/, "")));
      if (/^[+-]?\d+$/.test(t)) return Number(t);
    }
    throw new Error("node at " + url + " returned a malformed " + what + ": " + show(v));
  }

  function lowerHex(v) {
    return typeof v === "string" ? v.toLowerCase() : "";
  }

  async function rpcCall(opts, method, params) {
    var url = opts.rpcUrl;
    var f = opts.fetch || (root.fetch ? root.fetch.bind(root) : null);
    if (!f) throw new Error("this browser cannot make requests");
    opts._rpcId = (opts._rpcId || 0) + 1;
    var ctl = typeof AbortController !== "undefined" ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, opts.rpcTimeoutMs || 10000) : null;
    var resp, text;
    try {
      resp = await f(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: opts._rpcId, method: method, params: params }),
        signal: ctl ? ctl.signal : undefined,
        cache: "no-store",
        credentials: "omit",
      });
      text = await resp.text();
    } catch (e) {
      throw new Error("cannot reach the node at " + url + ": " + (e && e.message ? e.message : e) +
        " (the node must allow requests from this page: CORS)");
    } finally {
      if (timer) clearTimeout(timer);
    }
    var reply = null;
    try { reply = JSON.parse(text); } catch (e) { reply = null; }
    if (!reply || typeof reply !== "object" || Array.isArray(reply)) {
      throw new Error("node at " + url + " failed " + method + ": HTTP " + resp.status + ", not a JSON-RPC reply");
    }
    if (reply.error != null) {
      throw new Error("node at " + url + " failed " + method + ": " + (reply.error.message || JSON.stringify(reply.error)));
    }
    if (!("result" in reply)) throw new Error("node at " + url + " failed " + method + ": JSON-RPC reply without result");
    return reply.result;
  }

  /** §7.3, as ledger_client/evm.py verify_evm_anchor checks it. Resolves to {time, facts} or {error}. */
  async function checkEvmAnchor(a, hhHex, opts) {
    if (!isObj(a)) return { error: "evm anchor is not an object" };
    if (!has(a, "chain_id")) return { error: "evm anchor lacks field 'chain_id'" };
    if (!has(a, "tx")) return { error: "evm anchor lacks field 'tx'" };
    var chainId = a.chain_id, txh = a.tx;
    if (!J.isSafeInt(chainId)) return { error: "evm anchor chain_id " + show(chainId) + " is not an integer" };
    if (!(typeof txh === "string" && txh.startsWith("0x") && txh.length === 66)) {
      return { error: "evm anchor tx " + show(txh) + " is not a 0x-prefixed 32-byte hash" };
    }
    txh = txh.toLowerCase();
    if (!opts.rpcUrl) {
      return {
        error: "EVM anchor (chain " + chainId + ", tx " + txh + ") cannot be checked without a node: " +
          "this page has no blockchain node of its own. Enter the RPC URL of a node of chain " + chainId +
          " that you trust (like traceseal verify --rpc)",
        needsNode: true,
      };
    }
    var url = opts.rpcUrl;
    if (opts.chainId != null && chainId !== opts.chainId) {
      return { error: "anchor is on chain id " + chainId + ", want chain id " + opts.chainId + " (pinned)" };
    }
    var named = get(a, "header_hash");
    if (named != null && String(named).toLowerCase() !== hhHex) {
      return { error: "anchor names header hash " + show(named) + ", want " + hhHex };
    }
    try {
      var nodeChain = rpcQuantity(await rpcCall(opts, "eth_chainId", []), "chain id", url);
      if (nodeChain !== chainId) {
        return { error: "node at " + url + " is on chain id " + nodeChain + ", but the anchor is on chain id " + chainId };
      }
      var rc = await rpcCall(opts, "eth_getTransactionReceipt", [txh]);
      if (!rc) return { error: "transaction " + txh + " not found on chain id " + chainId + " (no receipt: never mined, dropped or reorged out)" };
      var number = rpcQuantity(rc.blockNumber, "receipt block number", url);
      var status = rpcQuantity(rc.status, "receipt status", url);
      if (status !== 1) return { error: "transaction " + txh + " failed: receipt status " + status + " in block " + number + ", want 1" };
      var blockHash = lowerHex(rc.blockHash);
      var tx = await rpcCall(opts, "eth_getTransactionByBlockHashAndIndex", [blockHash, rc.transactionIndex]);
      if (!tx || lowerHex(tx.hash) !== txh) {
        return { error: "block " + blockHash + " at index " + rc.transactionIndex + " holds " + (tx ? lowerHex(tx.hash) : "nothing") + ", not transaction " + txh };
      }
      var from = lowerHex(tx.from), to = lowerHex(tx.to);
      if (get(a, "from") != null && String(a.from).toLowerCase() !== from) {
        return { error: "anchor names sender " + a.from + ", but the chain says transaction " + txh + " is from " + from };
      }
      if (opts.sender != null && from !== String(opts.sender).toLowerCase()) {
        return { error: "transaction " + txh + " is from " + from + ", want " + String(opts.sender).toLowerCase() + " (pinned sender)" };
      }
      if (get(a, "to") != null && String(a.to).toLowerCase() !== to) {
        return { error: "anchor names recipient " + a.to + ", but the chain says transaction " + txh + " goes to " + (to || "contract creation") };
      }
      var gotInput = lowerHex(tx.input), wantInput = TAG_HEX + hhHex;
      if (gotInput !== wantInput) {
        return { error: "transaction " + txh + " input is " + gotInput + ", want " + wantInput + " (tag TSL1 + header hash)" };
      }
      var required = opts.confirmations != null ? opts.confirmations : (has(a, "confirmations_required") ? a.confirmations_required : 1);
      if (!J.isSafeInt(required) || required < 1) return { error: "confirmations required " + show(required) + " is not a positive integer" };
      var latest = rpcQuantity(await rpcCall(opts, "eth_blockNumber", []), "block number", url);
      var confs = latest - number + 1;
      if (confs < required) {
        return { error: "transaction " + txh + " has " + confs + " confirmation(s) (block " + number + ", latest " + latest + "), want at least " + required };
      }
      var blk = await rpcCall(opts, "eth_getBlockByHash", [blockHash, false]);
      if (!blk) return { error: "block " + blockHash + " of transaction " + txh + " not found on the node" };
      var ts = rpcQuantity(blk.timestamp, "block timestamp", url);
      return {
        time: ts * 1000,
        facts: { chain_id: nodeChain, block_number: number, block_hash: blockHash, from: from, to: to, confirmations: confs, time_ms: ts * 1000 },
      };
    } catch (e) {
      return { error: e && e.message ? e.message : String(e) };
    }
  }

  // ------------------------------------------------------------------ the nine steps
  /** §8.1 key chain: walk gateway.rotations from the first key; the first entry that is not
   * well formed or whose link does not hold fails step 1 and ends the chain. */
  async function keyChain(rotations, gwId, firstKey, s1) {
    var keys = [firstKey], bounds = [], entries = [], ended = false;
    for (var i = 0; i < rotations.length; i++) {
      var e = rotations[i], rec = get(e, "record");
      var c = isObj(rec) ? canonicalOrError(rec) : { error: "record is " + typeName(rec) };
      if (c.error || badFields(rec, ROTATION_FIELDS).length) {
        fail(s1, "gateway.rotations[" + i + "]: malformed rotation: " + (c.error || badFields(rec, ROTATION_FIELDS).join(", ")));
        ended = true;
        continue;
      }
      entries.push({ index: i, entry: e, record: rec, data: c.data });
      if (ended) { fail(s1, "gateway.rotations[" + i + "]: not used: an earlier rotation does not hold"); continue; }
      var cur = keys[keys.length - 1], why = null;
      if (rec.v !== 1) why = "version " + show(rec.v) + ", want 1";
      else if (rec.type !== "key_rotation") why = "type " + show(rec.type) + ", want \"key_rotation\"";
      else if (rec.gateway !== gwId) why = "gateway " + show(rec.gateway) + ", want " + show(gwId);
      else if (rec.old_key !== cur) why = "old_key is not the key in force " + cur.slice(0, 16) + "…";
      else if (!HEX64.test(rec.new_key)) why = "new_key " + show(rec.new_key, 70) + " is not 64 lowercase hex characters";
      else if (bounds.length && !(rec.last_block > bounds[bounds.length - 1])) why = "last_block is not after the previous rotation's";
      else if (!(await verifySig(cur, get(e, "sig"), concat(RECORD_DOMAIN, c.data)))) why = "signature by the old key does not verify";
      else {
        var stmt = J.canonical({ gateway: rec.gateway, old_key: rec.old_key, new_key: rec.new_key, last_block: rec.last_block });
        if (!(await verifySig(rec.new_key, rec.new_key_sig, concat(ROTATE_DOMAIN, stmt)))) why = "new_key_sig by the new key does not verify";
      }
      if (why) {
        fail(s1, "gateway.rotations[" + i + "] (seq " + rec.seq + "): " + why);
        ended = true;
        continue;
      }
      keys.push(rec.new_key);
      bounds.push(rec.last_block);
      s1.notes.push("key rotated after block " + rec.last_block + " (record seq " + rec.seq + "): " + rec.old_key.slice(0, 16) + "… → " + rec.new_key.slice(0, 16) + "…");
    }
    return { keys: keys, bounds: bounds, entries: entries };
  }

  async function verifyBundle(bundle, opts) {
    opts = opts || {};
    var steps = STEPS.map(function (s) { return newStep(s[0], s[1]); });
    var s1 = steps[0], s2 = steps[1], s3 = steps[2], s4 = steps[3], s5 = steps[4];
    var s6 = steps[5], s7 = steps[6], s8 = steps[7], s9 = steps[8];
    var report = { ok: false, steps: steps, summary: {} };
    var details = { records: [], headers: [], anchors: [], cover: {}, anchored: {}, pinned: opts.gatewayKey != null, keySource: "bundle" };

    function finish() {
      report.ok = steps.every(function (s) { return s.ok; });
      // §9.4: "verified" needs a pinned gateway key; without one the bundle vouches for itself
      report.key_pinned = opts.gatewayKey != null;
      report.result = !report.ok ? "failed" : report.key_pinned ? "verified" : "intact-key-not-pinned";
      return { report: report, details: details };
    }

    // (1) format ------------------------------------------------------------------
    var problem = null, gw, gwId, keyHex;
    if (!isObj(bundle)) problem = "bundle is " + typeName(bundle) + ", want object";
    else if (get(bundle, "format") !== FORMAT) problem = "format " + show(get(bundle, "format")) + ", want " + JSON.stringify(FORMAT);
    else {
      gw = get(bundle, "gateway");
      if (!isObj(gw)) problem = "gateway is " + typeName(gw) + ", want object";
      else if (!has(gw, "id") || !has(gw, "public_key")) problem = "gateway lacks " + (has(gw, "id") ? "public_key" : "id");
      else {
        gwId = gw.id;
        keyHex = gw.public_key;
        if (typeof gwId !== "string" || gwId === "") problem = "gateway.id " + show(gwId) + " is not a non-empty string";
        else if (typeof keyHex !== "string" || !HEX64.test(keyHex)) problem = "gateway.public_key " + show(keyHex, 70) + " is not 64 lowercase hex characters";
        else if (has(gw, "rotations") && !Array.isArray(gw.rotations)) problem = "gateway.rotations is " + typeName(gw.rotations) + ", want array";
        else {
          var want = [["blocks", "array"], ["records", "array"], ["anchors", "array"], ["selection", "object"]];
          for (var w = 0; w < want.length; w++) {
            var got = typeName(get(bundle, want[w][0]));
            if (got !== want[w][1]) { problem = want[w][0] + " is " + got + ", want " + want[w][1]; break; }
          }
        }
      }
    }
    if (problem) {
      fail(s1, "malformed bundle: " + problem);
      for (var q = 1; q < steps.length; q++) fail(steps[q], "not checked: bundle format is invalid");
      details.malformed = true;
      return finish();
    }
    s1.checked = 1;
    var blocks = bundle.blocks, records = bundle.records, anchors = bundle.anchors, selection = bundle.selection;
    var pubHex = keyHex; // K, §9.2
    // §8.1: the key chain; keys[j] signs the blocks after bounds[j-1]
    var chain = await keyChain(has(gw, "rotations") ? gw.rotations : [], gwId, keyHex, s1);
    details.keyChain = chain.keys;
    var pinnedKey = null; // §9.2: when set, every signature is checked with it
    var keyFor = function (n) {
      if (!isInt(n)) return chain.keys[0];
      var j = 0;
      chain.bounds.forEach(function (b) { if (n instanceof J.JInt ? n.big > BigInt(b) : b < n) j++; });
      return chain.keys[j];
    };
    var sigKey = function (n) { return pinnedKey !== null ? pinnedKey : keyFor(n); };
    if (opts.gatewayKey != null) {
      var pin = String(opts.gatewayKey);
      if (chain.keys.indexOf(pin.toLowerCase()) < 0) {
        fail(s1, "gateway key " + keyHex.slice(0, 16) + "… is not the pinned key " + pin.slice(0, 16) + "…");
        var raw = fromHexLenient(pin.toLowerCase());
        if (raw && raw.length === 32) {
          pubHex = bytesToHex(raw); // every signature below is then checked against the PINNED key
          pinnedKey = pubHex;
          details.keySource = "pinned-mismatch";
        } else {
          fail(s1, "pinned gateway key " + pin.slice(0, 16) + "… is not a 32-byte hex key");
          pinnedKey = keyHex;
          details.keySource = "bundle-bad-pin";
        }
      } else {
        details.keySource = "pinned";
      }
    } else {
      s1.notes.push("gateway key taken from the bundle; pin it (the gateway key field) to trust no one");
    }

    // The cryptography (signatures, hashes, Merkle paths) is started for every entry at once
    // and awaited together; the decisions below then run in order, as in the reference.
    var canon = new Map(), sigP = new Map(), hashP = new Map(), inclP = new Map();
    function canonOf(key, o) {
      if (!canon.has(key)) canon.set(key, canonicalOrError(o));
      return canon.get(key);
    }
    function headerWork(i) {
      var h = get(blocks[i], "header");
      if (!isObj(h) || !has(h, "block")) return;
      var c = canonOf("b" + i, h);
      if (c.error) return;
      sigP.set("b" + i, verifySig(sigKey(h.block), get(blocks[i], "sig"), concat(HEADER_DOMAIN, c.data)));
      hashP.set("b" + i, sha256(c.data).then(bytesToHex));
    }
    function recordSig(i, data) {
      if (!sigP.has("r" + i)) sigP.set("r" + i, verifySig(sigKey(get(records[i], "block")), get(records[i], "sig"), concat(RECORD_DOMAIN, data)));
      return sigP.get("r" + i);
    }
    function recordInclusion(i, index, size, data, proof, rootHex) {
      if (!inclP.has(i)) {
        inclP.set(i, hashLeaf(data).then(function (leaf) {
          return verifyInclusion(index, size, leaf, proof.map(hexToBytes), hexToBytes(rootHex));
        }));
      }
      return inclP.get(i);
    }
    for (var w0 = 0; w0 < blocks.length; w0++) headerWork(w0);
    await Promise.all(Array.from(sigP.values()).concat(Array.from(hashP.values())));

    // (3) headers, parsed once ---------------------------------------------------------
    var headers = new Map(), hashes = new Map(), order = [];
    for (var i = 0; i < blocks.length; i++) {
      var b = blocks[i];
      var h = get(b, "header");
      if (!isObj(h) || !has(h, "block")) {
        fail(s3, "blocks[" + i + "]: malformed header: " + (isObj(h) ? "no block member" : "header is " + typeName(h)));
        continue;
      }
      var ch = canonOf("b" + i, h);
      if (ch.error) { fail(s3, "blocks[" + i + "]: malformed header: " + ch.error); continue; }
      s3.checked++;
      var bad = badFields(h, HEADER_FIELDS);
      if (bad.length) { fail(s3, "blocks[" + i + "]: header fields " + bad.join(", ")); continue; }
      var n = h.block;
      var hd = { index: i, block: n, header: h, sigOk: false, kept: false, problems: [] };
      details.headers.push(hd);
      if (h.v !== 1) { fail(s3, "block " + n + ": header version " + show(h.v) + ", want 1"); hd.problems.push("version"); }
      if (h.key.toLowerCase() !== keyFor(n)) { fail(s3, "block " + n + ": signed by key " + h.key.slice(0, 16) + "…, not the gateway key " + keyFor(n).slice(0, 16) + "…"); hd.problems.push("key"); }
      if (h.gateway !== gwId) { fail(s3, "block " + n + ": gateway " + show(h.gateway) + ", want " + show(gwId)); hd.problems.push("gateway"); }
      hd.sigOk = await sigP.get("b" + i);
      if (!hd.sigOk) fail(s3, "block " + n + ": header signature does not verify");
      // a kept header has a JCS form, so its block number is a safe integer
      if (headers.has(n)) { fail(s3, "block " + n + " appears twice"); hd.problems.push("duplicate"); continue; }
      hd.kept = true;
      headers.set(n, h);
      hashes.set(n, await hashP.get("b" + i));
      order.push(n);
    }

    // (2) record signatures and (4) inclusion ------------------------------------------
    // start the cryptography of every record that can reach it (same conditions as below)
    for (var w1 = 0; w1 < records.length; w1++) {
      var er = get(records[w1], "record");
      if (!isObj(er) || !has(er, "seq")) continue;
      var ce = canonOf("r" + w1, er);
      if (ce.error || badFields(er, RECORD_FIELDS).length) continue;
      recordSig(w1, ce.data);
      var eb = get(records[w1], "block"), ei = get(records[w1], "index"), ep = get(records[w1], "proof");
      var eh = J.isSafeInt(eb) ? headers.get(eb) : undefined;
      if (!eh || !J.isSafeInt(ei) || !Array.isArray(ep) || !HEX64.test(eh.root)) continue;
      if (!(eh.first_seq <= er.seq && er.seq <= eh.last_seq) || ei !== er.seq - eh.first_seq) continue;
      if (!ep.every(function (x) { return typeof x === "string" && HEX64.test(x); })) continue;
      recordInclusion(w1, ei, eh.size, ce.data, ep, eh.root);
    }
    await Promise.all(Array.from(sigP.values()).concat(Array.from(inclP.values())));

    var proven = []; // {seq, block, record}
    var firstAt = new Map(); // seq -> index of the entry that counts
    var parsed = []; // kept records, for the selection step
    for (i = 0; i < records.length; i++) {
      var entry = records[i];
      var rec = get(entry, "record");
      var rd = { index: i, record: isObj(rec) ? rec : null, kept: false, sigOk: false, proven: false, problems: [] };
      details.records.push(rd);
      if (!isObj(rec) || !has(rec, "seq")) {
        fail(s2, "records[" + i + "]: malformed record: " + (isObj(rec) ? "no seq member" : "record is " + typeName(rec)));
        continue;
      }
      var cr = canonOf("r" + i, rec);
      if (cr.error) { fail(s2, "records[" + i + "]: malformed record: " + cr.error); continue; }
      s2.checked++;
      var badr = badFields(rec, RECORD_FIELDS);
      if (badr.length) { fail(s2, "records[" + i + "]: record fields " + badr.join(", ")); rd.problems.push("fields"); continue; }
      var seq = rec.seq;
      var seqKey = String(num(seq));
      if (firstAt.has(seqKey)) { // §9.3 step 2: one seq, one record; the first entry counts
        fail(s2, "records[" + i + "]: record seq " + seq + " appears twice (first at records[" + firstAt.get(seqKey) + "])");
        rd.problems.push("duplicate");
        continue;
      }
      firstAt.set(seqKey, i);
      rd.kept = true;
      parsed.push(rec);
      if (rec.v !== 1) { fail(s2, "record seq " + seq + ": version " + show(rec.v) + ", want 1"); rd.problems.push("version"); }
      if (rec.gateway !== gwId) { fail(s2, "record seq " + seq + ": gateway " + show(rec.gateway) + ", want " + show(gwId)); rd.problems.push("gateway"); }
      rd.sigOk = await recordSig(i, cr.data);
      if (!rd.sigOk) fail(s2, "record seq " + seq + ": signature does not verify");

      s4.checked++;
      var bn = get(entry, "block"), idx = get(entry, "index");
      if (!isInt(bn) || !isInt(idx)) {
        fail(s4, "record seq " + seq + ": block " + show(bn) + " and index " + show(idx) + " must be integers");
        rd.problems.push("inclusion");
        continue;
      }
      var bk = bn;
      var hh = J.isSafeInt(bn) ? headers.get(bn) : undefined;
      if (!hh) {
        fail(s4, "record seq " + seq + ": its block " + show(bn) + " is not in the bundle");
        rd.problems.push("inclusion");
        continue;
      }
      rd.block = bn;
      var why = null;
      var index = seq - hh.first_seq;
      var proofIn = get(entry, "proof");
      if (!(hh.first_seq <= seq && seq <= hh.last_seq)) why = "seq " + seq + " outside block " + bn + " range " + hh.first_seq + ".." + hh.last_seq;
      else if (!Array.isArray(proofIn)) why = "proof is " + typeName(proofIn) + ", want list";
      else if (!(J.isSafeInt(idx) && idx === index)) why = "leaf index " + show(idx) + ", want " + index;
      else {
        for (var p = 0; p < proofIn.length && !why; p++) {
          if (typeof proofIn[p] !== "string" || !HEX64.test(proofIn[p])) why = "proof hash " + show(proofIn[p], 70) + " is not 64 lowercase hex characters";
        }
        if (!why && !HEX64.test(hh.root)) why = "root " + show(hh.root, 70) + " is not 64 lowercase hex characters";
        if (!why) {
          why = await recordInclusion(i, index, hh.size, cr.data, proofIn, hh.root);
        }
      }
      if (why) {
        fail(s4, "record seq " + seq + " in block " + bn + ": " + why);
        rd.problems.push("inclusion");
        continue;
      }
      rd.proven = true;
      proven.push({ seq: seq, block: bk, record: rec });
    }

    // (4) a rotation whose block is in the bundle is its last leaf (§8.1) -----------------
    for (i = 0; i < chain.entries.length; i++) {
      var ce1 = chain.entries[i], rr = ce1.record, rb = rr.last_block;
      var rh = J.isSafeInt(rb) ? headers.get(rb) : undefined;
      if (!rh) continue;
      s4.checked++;
      var rproof = get(ce1.entry, "proof"), rwhy = null;
      if (!(rh.first_seq <= rr.seq && rr.seq <= rh.last_seq)) rwhy = "seq " + rr.seq + " outside block " + rb;
      else if (!Array.isArray(rproof) || !rproof.every(function (x) { return typeof x === "string" && HEX64.test(x); })) rwhy = "proof is not a list of 64 lowercase hex characters";
      else if (!HEX64.test(rh.root)) rwhy = "root " + show(rh.root, 70) + " is not 64 lowercase hex characters";
      else rwhy = await verifyInclusion(rr.seq - rh.first_seq, rh.size, await hashLeaf(ce1.data), rproof.map(hexToBytes), hexToBytes(rh.root));
      if (!rwhy && rr.seq !== rh.last_seq) rwhy = "block " + rb + " is the old key's last block: it must end with the rotation record seq " + rr.seq + ", not span " + rh.first_seq + ".." + rh.last_seq;
      if (rwhy) fail(s4, "gateway.rotations[" + ce1.index + "] (seq " + rr.seq + ") in block " + rb + ": " + rwhy);
    }

    // (5) chain continuity ---------------------------------------------------------------
    order.sort(function (x, y) { return x - y; });
    var numOf = function (k) { return k; };
    var isNext = function (a, c) { return c === a + 1; };
    for (i = 0; i + 1 < order.length; i++) {
      var pa = order[i], pb = order[i + 1];
      s5.checked++;
      var ha = headers.get(pa), hb = headers.get(pb);
      if (!isNext(pa, pb)) {
        fail(s5, "block " + pa + " is followed by block " + pb + ": blocks " + (pa + 1) + ".." + (pb - 1) + " are missing");
        continue;
      }
      if (hb.prev !== hashes.get(pa)) {
        fail(s5, "block " + numOf(pb) + ": prev " + String(hb.prev).slice(0, 16) + "… does not match hash of block " + numOf(pa) + " " + hashes.get(pa).slice(0, 16) + "…");
      }
      if (hb.first_seq !== ha.last_seq + 1) {
        fail(s5, "block " + pb + ": first_seq " + hb.first_seq + ", want " + (ha.last_seq + 1) + " (records missing between blocks)");
      }
    }
    order.forEach(function (k) {
      var x = headers.get(k);
      if (!(x.size === x.last_seq - x.first_seq + 1 && x.size >= 1)) {
        fail(s5, "block " + numOf(k) + ": size " + x.size + " does not match seq range " + x.first_seq + ".." + x.last_seq);
      }
    });
    if (order.length && order[0] === 0) {
      if (headers.get(0).prev !== ZERO_HASH) fail(s5, "block 0: prev must be all zeros");
      if (headers.get(0).first_seq !== 0) fail(s5, "block 0: first_seq " + headers.get(0).first_seq + ", want 0 (records before it are missing)");
    }

    // (6) anchors -----------------------------------------------------------------------
    var byHash = new Map();
    hashes.forEach(function (v, k) { byHash.set(v, k); });
    var anchored = new Map();
    if (!anchors.length) fail(s6, "no anchors in the bundle");
    for (i = 0; i < anchors.length; i++) {
      var an = anchors[i];
      s6.checked++;
      var kind = get(an, "kind");
      var ad = { index: i, anchor: isObj(an) ? an : null, kind: typeof kind === "string" ? kind : null, ok: false, error: null, time: null, block: null };
      details.anchors.push(ad);
      var named = get(an, "header_hash");
      if (named == null && isObj(get(an, "entry"))) named = get(an.entry, "header_hash");
      if (typeof named !== "string" || !HEX64.test(named)) {
        ad.error = "anchor header hash " + show(named, 70) + " is not 64 lowercase hex characters";
        fail(s6, "anchors[" + i + "]: " + ad.error);
        continue;
      }
      if (!byHash.has(named)) {
        ad.error = "header hash " + named.slice(0, 16) + "… matches no block in the bundle";
        fail(s6, "anchors[" + i + "] (" + show(kind) + "): " + ad.error);
        continue;
      }
      var ab = byHash.get(named);
      ad.block = numOf(ab);
      var res;
      if (kind === "local") res = await checkLocalAnchor(an, named, opts);
      else if (kind === "evm") res = await checkEvmAnchor(an, named, opts);
      else {
        ad.error = "unknown ledger kind " + show(kind);
        fail(s6, "anchors[" + i + "]: " + ad.error);
        continue;
      }
      if (res.error) {
        ad.error = res.error;
        ad.needsNode = !!res.needsNode;
        fail(s6, "anchors[" + i + "] (" + kind + ") for block " + ad.block + ": " + res.error);
        continue;
      }
      if (kind === "local") {
        var e = an.entry;
        if (e.gateway !== gwId || !(isInt(e.block) && J.jsonEq(e.block, ad.block))) {
          ad.error = "entry names gateway " + show(e.gateway) + " block " + show(e.block) + ", want " + show(gwId) + " block " + ad.block;
          fail(s6, "anchors[" + i + "] (local): " + ad.error);
          continue;
        }
      }
      if (!J.isSafeInt(res.time) || res.time < ANCHOR_TIME_MIN_MS || res.time > ANCHOR_TIME_MAX_MS) { // §7.4
        ad.error = "anchor time " + res.time + " is outside " + ANCHOR_TIME_MIN_MS + ".." + ANCHOR_TIME_MAX_MS + " (years 2000..2200)";
        fail(s6, "anchors[" + i + "] (" + kind + ") for block " + ad.block + ": " + ad.error);
        continue;
      }
      ad.ok = true;
      ad.time = res.time;
      ad.facts = res.facts || null;
      anchored.set(ab, anchored.has(ab) ? Math.min(anchored.get(ab), res.time) : res.time);
      s6.notes.push("block " + ad.block + " anchored on " + kind + " at " + iso(res.time));
    }

    // (7) coverage and (8) anchor time ----------------------------------------------------
    var cover = new Map(), best = null;
    var present = new Set(order);
    for (i = order.length - 1; i >= 0; i--) {
      var k2 = order[i];
      if (i !== order.length - 1 && !present.has(k2 + 1)) best = null; // a gap breaks the chain upward
      if (anchored.has(k2)) best = best === null ? anchored.get(k2) : Math.min(best, anchored.get(k2));
      if (best !== null) cover.set(k2, best);
    }
    order.forEach(function (k) {
      s7.checked++;
      if (!cover.has(k)) {
        if (s5.ok || anchored.has(k)) fail(s7, "block " + numOf(k) + " is not covered by any anchor in the bundle");
        else fail(s7, "block " + numOf(k) + " is not covered: the header chain to an anchor is broken");
      }
    });
    order.forEach(function (k) {
      var x = headers.get(k), at = cover.get(k);
      if (at === undefined) return;
      s8.checked++;
      ["last_time_ms", "sealed_ms"].forEach(function (f) {
        if (x.clock_synced === true && x[f] > at) {
          fail(s8, "block " + numOf(k) + ": " + f + " " + x[f] + " is after its anchor time " + at + " (" + iso(at) + "): the header claims a future time");
        }
      });
    });
    proven.forEach(function (pr) {
      var at = cover.get(pr.block);
      if (at === undefined) return;
      s8.checked++;
      if (pr.record.clock_synced === true && pr.record.time_ms > at) {
        fail(s8, "record seq " + pr.seq + ": time " + pr.record.time_ms + " (" + iso(pr.record.time_ms) + ") is after its anchor time " + at + " (" + iso(at) + ")");
      }
    });

    // (9) selection -----------------------------------------------------------------------
    checkSelection(selection, parsed, headers, order, s9);

    anchored.forEach(function (t, k) { details.anchored[numOf(k)] = t; });
    cover.forEach(function (t, k) { details.cover[numOf(k)] = t; });
    var anchoredBlocks = Array.from(anchored.keys()).sort(function (x, y) { return x - y; });
    var anchorTimes = {};
    anchoredBlocks.forEach(function (k) { anchorTimes[String(k)] = anchored.get(k); });
    report.summary = {
      gateway: gwId, public_key: keyHex, records: firstAt.size, blocks: order.length,
      block_range: order.length ? [numOf(order[0]), numOf(order[order.length - 1])] : null,
      anchors: anchors.length, anchored_blocks: anchoredBlocks, anchor_time_ms: anchorTimes, selection: selection,
    };
    details.order = order.map(numOf);
    details.headersByBlock = {};
    order.forEach(function (k) { details.headersByBlock[String(numOf(k))] = headers.get(k); });
    details.pubHex = pubHex;
    return finish();
  }

  function checkSelection(sel, recs, headers, order, s9) {
    if (!isObj(sel) || !has(sel, "type")) {
      fail(s9, "selection " + show(sel) + " has no type");
      return;
    }
    var kind = sel.type;
    s9.checked = recs.length;
    var first = order.length ? headers.get(order[0]) : null;
    var last = order.length ? headers.get(order[order.length - 1]) : null;
    if (kind === "record") {
      var want = get(sel, "seq");
      var seqs = recs.map(function (r) { return r.seq; });
      if (!isInt(want) || !(seqs.length === 1 && J.jsonEq(seqs[0], want))) {
        fail(s9, "selection is record seq " + show(want) + ", bundle has seqs " + show(seqs.slice(0, 5)));
      }
      return;
    }
    if (kind === "range") {
      var lo = get(sel, "from_ms"), hi = get(sel, "to_ms"), sensor = get(sel, "sensor");
      if (!(isInt(lo) && isInt(hi) && typeof sensor === "string")) {
        fail(s9, "range selection needs integer from_ms/to_ms and a sensor, got " + show(lo) + ", " + show(hi) + ", " + show(sensor));
        return;
      }
      var le = function (a, c) { return (typeof a === "number" ? a : Number(a.big)) <= (typeof c === "number" ? c : Number(c.big)); };
      recs.forEach(function (r) {
        if (get(r, "sensor") !== sensor) fail(s9, "record seq " + r.seq + ": sensor " + show(get(r, "sensor")) + " is not the selected " + show(sensor));
        if (!(le(lo, r.time_ms) && le(r.time_ms, hi))) fail(s9, "record seq " + r.seq + ": time " + r.time_ms + " outside selected range " + lo + ".." + hi);
      });
      if (!order.length) { fail(s9, "range bundle has no blocks"); return; }
      if (order[0] !== 0 && !le(first.first_time_ms, lo)) {
        fail(s9, "first block " + order[0] + " starts at " + first.first_time_ms + ", after the range start " + lo + ": earlier blocks are missing");
      }
      if (!le(hi, last.last_time_ms)) {
        if (get(sel, "open_end") === true) {
          s9.notes.push("open end: the exporter says nothing after block " + order[order.length - 1] + " (" + last.last_time_ms + ") was anchored at export time; this claim is not signed");
        } else {
          fail(s9, "last block " + order[order.length - 1] + " ends at " + last.last_time_ms + " (" + iso(last.last_time_ms) + "), before the range end " + hi + " (" + iso(Number(hi)) + "): later blocks are missing");
        }
      }
      return;
    }
    if (kind === "lot") { checkLot(sel, recs, order, first, last, s9); return; }
    if (kind === "route") { checkRoute(sel, recs, s9); return; }
    if (kind === "records") { s9.notes.push("records selection: " + show(get(sel, "id") === undefined ? "" : sel.id)); return; }
    fail(s9, "unknown selection type " + show(kind));
  }

  function num(v) { return typeof v === "number" ? v : Number(v.big); }

  function checkLot(sel, recs, order, first, last, s9) {
    var lot = get(sel, "lot"), windows = get(sel, "windows");
    if (typeof lot !== "string" || !Array.isArray(windows)) {
      fail(s9, "lot selection needs a lot string and a windows list, got " + show(lot) + ", " + show(windows));
      return;
    }
    for (var i = 0; i < windows.length; i++) {
      var w = windows[i];
      if (!(isObj(w) && typeof get(w, "unit") === "string" && isInt(get(w, "from_ms")) && isInt(get(w, "to_ms")) && Array.isArray(get(w, "sensors")))) {
        fail(s9, "lot window " + i + " is malformed: " + show(w));
        return;
      }
    }
    var stock = recs.filter(function (r) { return get(r, "type") === "stock" && get(r, "lot") === lot; });
    windows.forEach(function (w, i) {
      if (!stock.some(function (r) { return get(r, "event") === "in" && get(r, "unit") === w.unit && has(r, "at_ms") && J.jsonEq(r.at_ms, w.from_ms); })) {
        fail(s9, "lot window " + i + " (" + w.unit + " from " + w.from_ms + ") has no signed stock-in record");
      }
      if (get(w, "open") === true) {
        if (order.length && last.last_time_ms > num(w.to_ms)) fail(s9, "lot window " + i + " is open but ends at " + w.to_ms + ", before the bundle's last block");
      } else if (!stock.some(function (r) {
        var ev = get(r, "event");
        return (ev === "out" || ev === "discard") && get(r, "unit") === w.unit && has(r, "at_ms") && J.jsonEq(r.at_ms, w.to_ms) &&
          has(r, "stock_after") && J.jsonEq(r.stock_after, 0);
      })) {
        fail(s9, "lot window " + i + " (" + w.unit + " to " + w.to_ms + ") has no signed stock-out record emptying it");
      }
    });
    recs.forEach(function (r) {
      var attrs = isObj(get(r, "attrs")) ? r.attrs : null;
      if (get(r, "lot") === lot || (attrs && get(attrs, "lot") === lot)) return;
      var t = r.time_ms;
      var inside = windows.some(function (w) {
        if (!(num(w.from_ms) <= t && t <= num(w.to_ms))) return false;
        if (has(r, "sensor") && w.sensors.some(function (x) { return J.jsonEq(r.sensor, x); })) return true;
        return get(r, "type") === "alarm" && get(r, "unit") === w.unit;
      });
      if (!inside) fail(s9, "record seq " + r.seq + " is neither about lot " + show(lot) + " nor inside one of its unit windows");
    });
    if (windows.length && order.length) {
      var lo = Math.min.apply(null, windows.map(function (w) { return num(w.from_ms); }));
      var hi = Math.max.apply(null, windows.map(function (w) { return num(w.to_ms); }));
      if (order[0] !== 0 && first.first_time_ms > lo) fail(s9, "first block " + order[0] + " starts at " + first.first_time_ms + ", after the lot's first window " + lo + ": earlier blocks are missing");
      if (last.last_time_ms < hi) fail(s9, "last block " + order[order.length - 1] + " ends at " + last.last_time_ms + ", before the lot's last window ends " + hi + ": later blocks are missing");
    }
    var units = Array.from(new Set(windows.map(function (w) { return w.unit; }))).sort();
    s9.notes.push("lot " + lot + ": " + windows.length + " residency window(s) in unit(s) " + units.join(", "));
  }

  function checkRoute(sel, recs, s9) {
    var route = get(sel, "id");
    if (typeof route !== "string") {
      fail(s9, "route selection needs an id string, got " + show(route));
      return;
    }
    var own = recs.filter(function (r) { return get(r, "route") === route; });
    var citedSessions = own.filter(function (r) { return get(r, "session") != null; }).map(function (r) { return r.session; });
    var oneOf = function (v, arr) { return arr.some(function (x) { return J.jsonEq(v, x); }); };
    var sessions = recs.filter(function (r) {
      return get(r, "type") === "custody_session" && get(r, "id") != null && oneOf(r.id, citedSessions);
    });
    var cited = [];
    own.concat(sessions).forEach(function (r) {
      ["scan_seq", "weight_seq", "badge_seq"].forEach(function (k) { if (has(r, k)) cited.push(r[k]); });
    });
    recs.forEach(function (r) {
      if (get(r, "route") === route || sessions.indexOf(r) >= 0) return;
      if (oneOf(r.seq, cited)) return;
      fail(s9, "record seq " + r.seq + " (" + show(get(r, "type")) + ") neither names route " + show(route) + " nor is cited by its records");
    });
    s9.notes.push("route " + route + ": " + own.filter(function (r) { return get(r, "type") === "custody"; }).length + " custody records");
  }

  /** Read and verify bundle text. {readable:false, error} when §9.1 says it cannot be read. */
  async function verifyText(text, opts) {
    var value;
    try {
      value = J.parseStrict(text);
    } catch (e) {
      if (e instanceof J.ReadError) return { readable: false, error: e.message };
      throw e;
    }
    if (!cryptoBackend()) {
      return { readable: true, noCrypto: true, error: "this browser does not offer its cryptography (WebCrypto) to this page" };
    }
    var out = await verifyBundle(value, opts || {});
    return { readable: true, bundle: value, report: out.report, details: out.details };
  }

  /** Bytes of a file → verifyText (strict UTF-8, §9.1). */
  async function verifyBytes(bytes, opts) {
    var text;
    try {
      text = J.decodeUtf8(bytes);
    } catch (e) {
      return { readable: false, error: e.message };
    }
    return verifyText(text, opts);
  }

  function firstFailure(report) {
    for (var k = 0; k < report.steps.length; k++) if (!report.steps[k].ok) return report.steps[k];
    return null;
  }

  root.TraceSealVerify = {
    STEPS: STEPS,
    verifyText: verifyText,
    verifyBytes: verifyBytes,
    verifyBundle: verifyBundle,
    firstFailure: firstFailure,
    cryptoBackend: cryptoBackend,
    iso: iso,
    _internal: { sha256: sha256, ed25519Verify: ed25519Verify, verifyInclusion: verifyInclusion, hexToBytes: hexToBytes, bytesToHex: bytesToHex },
  };
})(typeof self !== "undefined" ? self : globalThis);
