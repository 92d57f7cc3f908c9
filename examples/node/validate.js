#!/usr/bin/env node
// Validate a Cognito token with token-validator and print the answer as JSON.
//
//   node validate.js [--addr HOST:PORT] [--token-use id|access]
//                    [--scope S]... [--group G]... [--check-revocation]
//                    [--timeout SECONDS] TOKEN
//   node validate.js --user-info [--addr HOST:PORT] [--timeout SECONDS] TOKEN
//
// The address defaults to $TOKEN_VALIDATOR_ADDR, then 127.0.0.1:50051.
// --user-info calls GetUserInfo (the user's profile; for an access token the
// service asks Cognito, so a revoked token is refused) instead of ValidateToken.
// --check-revocation sets `check_revocation: true` in the ValidateToken request:
// the service also asks Cognito whether the token was revoked (signed out
// everywhere, refresh token revoked, user disabled or deleted), where the
// token's pool allows it (`revocation.check: on_request`); a revoked token
// answers valid=false, REASON_REVOKED.
// Exit status: 0 valid, 1 rejected token (the JSON says why), 2 usage error,
// 3 the service could not answer (gRPC error, printed as JSON on stdout too;
// COGNITO_UNAVAILABLE when it could not ask Cognito: answer 503, never let in).
//
// A failed call's reason is read from the google.rpc.ErrorInfo detail that the
// service puts in the `grpc-status-details-bin` trailer, never from the text.
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
const PROTO_FILE = 'tokenvalidator/v1/token_validator.proto';
const ERROR_DOMAIN = 'tokenvalidator.v1';
const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo';

// google.rpc.Status and google.rpc.ErrorInfo (googleapis google/rpc/status.proto
// and error_details.proto), the two messages of the status detail; Any is
// written out so that its payload stays bytes.
const RPC_TYPES = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
                details: { rule: 'repeated', type: 'Any', id: 3 },
              },
            },
            Any: {
              fields: {
                type_url: { type: 'string', id: 1 },
                value: { type: 'bytes', id: 2 },
              },
            },
            ErrorInfo: {
              fields: {
                reason: { type: 'string', id: 1 },
                domain: { type: 'string', id: 2 },
                metadata: { keyType: 'string', type: 'string', id: 3 },
              },
            },
          },
        },
      },
    },
  },
});
const Status = RPC_TYPES.lookupType('google.rpc.Status');
const ErrorInfo = RPC_TYPES.lookupType('google.rpc.ErrorInfo');

// The service's ErrorInfo of a failed call: {reason, domain, metadata}, or null
// when the status has none (an older server, a client-side error such as a
// deadline) or it cannot be decoded.
function errorInfo(err) {
  const values = err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
  for (const value of values) {
    let status;
    try {
      status = Status.decode(Buffer.isBuffer(value) ? value : Buffer.from(value));
    } catch {
      return null;
    }
    // A detail that contradicts the status it rides on is not to be trusted.
    if (status.code !== err.code || status.message !== err.details) return null;
    for (const any of status.details) {
      if (any.type_url !== ERROR_INFO_TYPE) continue;
      let info;
      try {
        info = ErrorInfo.decode(any.value);
      } catch {
        continue;
      }
      if (info.domain === ERROR_DOMAIN) {
        return { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } };
      }
    }
  }
  return null;
}

function usage(message) {
  if (message) process.stderr.write(`validate.js: ${message}\n`);
  process.stderr.write(
    'usage: node validate.js [--addr HOST:PORT] [--token-use id|access] ' +
      '[--scope S]... [--group G]... [--check-revocation] [--timeout SECONDS] [--user-info] TOKEN\n',
  );
  process.exit(2);
}

function parse() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        addr: { type: 'string', default: process.env.TOKEN_VALIDATOR_ADDR || '127.0.0.1:50051' },
        'token-use': { type: 'string' },
        scope: { type: 'string', multiple: true, default: [] },
        group: { type: 'string', multiple: true, default: [] },
        timeout: { type: 'string', default: '5' },
        'user-info': { type: 'boolean', default: false },
        'check-revocation': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    usage(err.message);
  }
  const { values, positionals } = parsed;
  if (values.help) usage();
  if (positionals.length !== 1) usage('give exactly one TOKEN');
  const tokenUse = { undefined: 'TOKEN_USE_UNSPECIFIED', id: 'TOKEN_USE_ID', access: 'TOKEN_USE_ACCESS' }[
    values['token-use']
  ];
  if (!tokenUse) usage('--token-use must be id or access');
  if (
    values['user-info'] &&
    (values['token-use'] || values.scope.length || values.group.length || values['check-revocation'])
  ) {
    usage('--user-info takes no --token-use, --scope, --group or --check-revocation');
  }
  const timeout = Number(values.timeout);
  if (!(timeout > 0)) usage('--timeout must be a positive number of seconds');
  // Accept http://host:port (as printed by `token-validator dev --json`).
  const addr = values.addr.replace(/^http:\/\//, '').replace(/\/$/, '');
  return {
    addr,
    tokenUse,
    scopes: values.scope,
    groups: values.group,
    timeout,
    userInfo: values['user-info'],
    checkRevocation: values['check-revocation'],
    token: positionals[0],
  };
}

// A failed call as JSON. UNAUTHENTICATED (GetUserInfo refused the token) is a
// rejected token, {"valid": false, "reason": "REASON_REVOKED", ...}, exit 1;
// anything else means the service could not answer, exit 3. `reason` is the
// ErrorInfo reason (null if the status has none), `metadata` its pool and kid.
function printError(err) {
  const info = errorInfo(err);
  const code = grpc.status[err.code] || String(err.code);
  const out = {};
  const rejected = err.code === grpc.status.UNAUTHENTICATED;
  if (rejected) out.valid = false;
  Object.assign(out, {
    error: code,
    reason: info ? info.reason : null,
    message: err.details || err.message,
    metadata: info ? info.metadata : {},
  });
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exitCode = rejected ? 1 : 3;
}

function main() {
  const args = parse();
  const definition = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: Number, // Unix seconds fit a double.
    enums: String,
    defaults: true,
  });
  const { TokenValidator } = grpc.loadPackageDefinition(definition).tokenvalidator.v1;
  const client = new TokenValidator(args.addr, grpc.credentials.createInsecure());

  const deadline = new Date(Date.now() + args.timeout * 1000);
  if (args.userInfo) {
    client.GetUserInfo({ token: args.token }, { deadline }, (err, response) => {
      client.close();
      if (err) {
        printError(err);
        return;
      }
      process.stdout.write(JSON.stringify({ valid: true, user: response }, null, 2) + '\n');
      process.exitCode = 0;
    });
    return;
  }

  const request = {
    token: args.token,
    expected_token_use: args.tokenUse,
    required_scopes: args.scopes,
    required_groups: args.groups,
    // Ask Cognito too (one call per token per revocation.cache_ttl_secs on the
    // service's side): for routes where a signed-out or off-boarded user must
    // be refused before the token expires.
    check_revocation: args.checkRevocation,
  };
  client.ValidateToken(request, { deadline }, (err, response) => {
    client.close();
    if (err) {
      printError(err);
      return;
    }
    const out = { valid: response.valid, reason: response.reason, message: response.message };
    if (response.reason === 'REASON_REVOKED') {
      // Cognito no longer accepts the token or its user: the signature and exp
      // are fine, so retrying or refreshing locally will not help. End the
      // session (an app would answer 401 and drop its cookie).
      out.revoked = true;
      process.stderr.write('validate.js: the token was revoked in Cognito; sign the user out\n');
    }
    if (response.valid && response.claims) {
      const { json, ...claims } = response.claims;
      out.claims = claims;
      try {
        out.claims.payload = JSON.parse(json);
      } catch {
        out.claims.payload = null;
      }
    }
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    process.exitCode = response.valid ? 0 : 1;
  });
}

main();
