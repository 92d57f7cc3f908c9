#!/usr/bin/env node
// Benchmark peer: tokenvalidator.v1.TokenValidator in Node.js, the way a Node
// team would write it: @grpc/grpc-js + @grpc/proto-loader (dynamic loading of
// the same .proto as the Rust service) + aws-jwt-verify (AWS's own Cognito
// verifier).
//
// CLI (shared with the Python peer):
//   --port PORT          TCP port on 127.0.0.1 (0 = pick one)
//   --jwks FILE          JWKS JSON file, loaded into the verifier's cache at start
//   --user-pool-id ID    e.g. us-east-1_bench1 (issuer is derived from it)
//   --client-id ID       the app client id (may be repeated)
//   --workers N          node:cluster workers sharing the port (default 1)
//   --proto FILE         defaults to <repo>/proto/tokenvalidator/v1/token_validator.proto
// Prints "READY <port>" on stdout once serving; exits 0 on SIGTERM/SIGINT.
//
// No network calls: the JWKS is preloaded with cacheJwks() and tokens are
// checked with verifySync(), which only reads the cache (the async verify()
// would try to download the JWKS from cognito-idp.<region>.amazonaws.com for
// an unknown kid).
"use strict";

const cluster = require("node:cluster");
const fs = require("node:fs");
const path = require("node:path");

function usage(msg) {
  process.stderr.write(`server.js: ${msg}\n`);
  process.stderr.write(
    "usage: node server.js --port PORT --jwks FILE --user-pool-id ID --client-id ID [--client-id ID...] [--workers N] [--proto FILE]\n",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    port: null,
    jwks: null,
    userPoolId: null,
    clientIds: [],
    workers: 1,
    proto: path.resolve(__dirname, "../../../proto/tokenvalidator/v1/token_validator.proto"),
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let val;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      val = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = () => {
      if (val !== undefined) return val;
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "--port": opts.port = Number(next()); break;
      case "--jwks": opts.jwks = next(); break;
      case "--user-pool-id": opts.userPoolId = next(); break;
      case "--client-id": opts.clientIds.push(next()); break;
      case "--workers": opts.workers = Number(next()); break;
      case "--proto": opts.proto = next(); break;
      case "-h": case "--help": usage("help"); break;
      default: usage(`unknown argument ${arg}`);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage("--port is required (0-65535)");
  if (!opts.jwks) usage("--jwks is required");
  if (!opts.userPoolId) usage("--user-pool-id is required");
  if (opts.clientIds.length === 0) usage("--client-id is required");
  if (!Number.isInteger(opts.workers) || opts.workers < 1) usage("--workers must be >= 1");
  if (opts.workers > 1 && opts.port === 0) usage("--workers > 1 needs a fixed --port");
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------------------
// Primary of a multi-worker cluster: fork, wait for all to listen, relay READY.
if (opts.workers > 1 && cluster.isPrimary) {
  let ready = 0;
  let stopping = false;
  for (let i = 0; i < opts.workers; i++) cluster.fork();
  cluster.on("message", (_worker, msg) => {
    if (msg && msg.ready && ++ready === opts.workers) {
      process.stdout.write(`READY ${msg.port}\n`);
    }
  });
  cluster.on("exit", (worker, code, signal) => {
    if (!stopping) {
      process.stderr.write(`worker ${worker.process.pid} died (${signal || code}); stopping\n`);
      stop(1);
    } else if (Object.keys(cluster.workers).length === 0) {
      process.exit(0);
    }
  });
  const stop = (code) => {
    if (stopping) return;
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill("SIGTERM");
    setTimeout(() => process.exit(code), 5000).unref();
    if (Object.keys(cluster.workers).length === 0) process.exit(code);
  };
  process.on("SIGTERM", () => stop(0));
  process.on("SIGINT", () => stop(0));
  return;
}

// ---------------------------------------------------------------------------
// A serving process (the only one, or a cluster worker).
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const { CognitoJwtVerifier } = require("aws-jwt-verify");
const errors = require("aws-jwt-verify/error");

const packageDefinition = protoLoader.loadSync(opts.proto, {
  keepCase: true, // field names as in the .proto (token_use, not tokenUse)
  longs: Number, // int64 as JS numbers (unix seconds fit)
  enums: String, // enums as their names
  defaults: true,
  oneofs: true,
  includeDirs: [path.resolve(path.dirname(opts.proto), "../..")],
});
const proto = grpc.loadPackageDefinition(packageDefinition).tokenvalidator.v1;

const verifier = CognitoJwtVerifier.create({
  userPoolId: opts.userPoolId,
  tokenUse: null, // both; narrowed per call from expected_token_use
  clientId: opts.clientIds.length === 1 ? opts.clientIds[0] : opts.clientIds,
});
verifier.cacheJwks(JSON.parse(fs.readFileSync(opts.jwks, "utf8")));

const TOKEN_USE = { TOKEN_USE_ID: "id", TOKEN_USE_ACCESS: "access" };

// Most specific classes first: several derive from FailedAssertionError /
// JwtInvalidClaimError.
const REASONS = [
  [errors.JwtExpiredError, "REASON_EXPIRED"],
  [errors.JwtNotBeforeError, "REASON_NOT_YET_VALID"],
  [errors.JwtInvalidIssuerError, "REASON_UNKNOWN_ISSUER"],
  [errors.CognitoJwtInvalidClientIdError, "REASON_WRONG_CLIENT"],
  [errors.JwtInvalidAudienceError, "REASON_WRONG_CLIENT"],
  [errors.CognitoJwtInvalidTokenUseError, "REASON_WRONG_TOKEN_USE"],
  [errors.CognitoJwtInvalidGroupError, "REASON_MISSING_GROUP"],
  [errors.JwtInvalidScopeError, "REASON_MISSING_SCOPE"],
  [errors.JwtInvalidSignatureAlgorithmError, "REASON_UNSUPPORTED_ALGORITHM"],
  [errors.JwtInvalidSignatureError, "REASON_BAD_SIGNATURE"],
  [errors.KidNotFoundInJwksError, "REASON_UNKNOWN_KEY"],
  [errors.JwtWithoutValidKidError, "REASON_UNKNOWN_KEY"],
  [errors.JwksNotAvailableInCacheError, "REASON_UNKNOWN_KEY"],
  [errors.JwkInvalidUseError, "REASON_UNKNOWN_KEY"],
  [errors.JwkInvalidKtyError, "REASON_UNKNOWN_KEY"],
  [errors.JwkValidationError, "REASON_UNKNOWN_KEY"],
  [errors.JwtParseError, "REASON_MALFORMED"],
];

function reasonOf(err) {
  for (const [cls, reason] of REASONS) if (err instanceof cls) return reason;
  // getIssuerConfig() looks the unverified `iss` up among the configured
  // issuers before anything else and throws a ParameterValidationError.
  if (err instanceof errors.ParameterValidationError && /issuer not configured/.test(err.message)) {
    return "REASON_UNKNOWN_ISSUER";
  }
  return "REASON_MALFORMED"; // mistyped claims (FailedAssertionError), missing iss, ...
}

const asArray = (v) => (Array.isArray(v) ? v : v == null ? [] : [v]);
const asInt = (v) => (typeof v === "number" ? Math.trunc(v) : 0);
const asStr = (v) => (typeof v === "string" ? v : "");

function claimsOf(p) {
  const isId = p.token_use === "id";
  const aud = Array.isArray(p.aud) ? p.aud[0] : p.aud;
  return {
    sub: asStr(p.sub),
    issuer: asStr(p.iss),
    token_use: asStr(p.token_use),
    client_id: asStr(isId ? aud : p.client_id),
    username: asStr(isId ? p["cognito:username"] : p.username),
    groups: asArray(p["cognito:groups"]).filter((g) => typeof g === "string"),
    scopes: typeof p.scope === "string" ? p.scope.split(" ").filter(Boolean) : [],
    expires_at: asInt(p.exp),
    issued_at: asInt(p.iat),
    auth_time: asInt(p.auth_time),
    jti: asStr(p.jti),
    origin_jti: asStr(p.origin_jti),
    email: asStr(p.email),
    json: JSON.stringify(p),
  };
}

function invalid(reason, message) {
  return { valid: false, reason, message, claims: null };
}

function validateToken(call, callback) {
  const req = call.request;
  let token = req.token || "";
  if (token.length > 7 && token.slice(0, 7).toLowerCase() === "bearer ") token = token.slice(7).trim();
  if (!token) {
    callback({ code: grpc.status.INVALID_ARGUMENT, details: "token is empty" });
    return;
  }
  const props = { tokenUse: TOKEN_USE[req.expected_token_use] ?? null };
  if (req.required_groups.length > 0) props.groups = req.required_groups; // any-of, like the proto
  let payload;
  try {
    payload = verifier.verifySync(token, props);
  } catch (err) {
    callback(null, invalid(reasonOf(err), err.message || String(err)));
    return;
  }
  // aws-jwt-verify's `scope` option is any-of; the proto's required_scopes is all-of.
  if (req.required_scopes.length > 0) {
    const have = new Set(typeof payload.scope === "string" ? payload.scope.split(" ") : []);
    const missing = req.required_scopes.filter((s) => !have.has(s));
    if (missing.length > 0) {
      callback(null, invalid("REASON_MISSING_SCOPE", `missing scope(s): ${missing.join(", ")}`));
      return;
    }
  }
  callback(null, { valid: true, reason: "REASON_UNSPECIFIED", message: "", claims: claimsOf(payload) });
}

function getUserInfo(_call, callback) {
  callback({ code: grpc.status.UNIMPLEMENTED, details: "GetUserInfo is not implemented by this benchmark peer" });
}

const server = new grpc.Server();
server.addService(proto.TokenValidator.service, { ValidateToken: validateToken, GetUserInfo: getUserInfo });
server.bindAsync(`127.0.0.1:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`bind failed: ${err.message}\n`);
    process.exit(1);
  }
  if (cluster.isWorker) process.send({ ready: true, port });
  else process.stdout.write(`READY ${port}\n`);
});

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => {
    server.forceShutdown();
    process.exit(0);
  }, 2000);
  force.unref();
  server.tryShutdown(() => process.exit(0));
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
