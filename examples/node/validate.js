#!/usr/bin/env node
// Validate a Cognito token with token-validator and print the answer as JSON.
//
//   node validate.js [--addr HOST:PORT] [--token-use id|access]
//                    [--scope S]... [--group G]... [--timeout SECONDS] TOKEN
//
// The address defaults to $TOKEN_VALIDATOR_ADDR, then 127.0.0.1:50051.
// Exit status: 0 valid, 1 rejected token (the JSON says why), 2 usage error,
// 3 the service could not answer (gRPC error, printed as JSON on stdout too).
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
const PROTO_FILE = 'tokenvalidator/v1/token_validator.proto';

function usage(message) {
  if (message) process.stderr.write(`validate.js: ${message}\n`);
  process.stderr.write(
    'usage: node validate.js [--addr HOST:PORT] [--token-use id|access] ' +
      '[--scope S]... [--group G]... [--timeout SECONDS] TOKEN\n',
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
  const timeout = Number(values.timeout);
  if (!(timeout > 0)) usage('--timeout must be a positive number of seconds');
  // Accept http://host:port (as printed by `token-validator dev --json`).
  const addr = values.addr.replace(/^http:\/\//, '').replace(/\/$/, '');
  return { addr, tokenUse, scopes: values.scope, groups: values.group, timeout, token: positionals[0] };
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

  const request = {
    token: args.token,
    expected_token_use: args.tokenUse,
    required_scopes: args.scopes,
    required_groups: args.groups,
  };
  const deadline = new Date(Date.now() + args.timeout * 1000);
  client.ValidateToken(request, { deadline }, (err, response) => {
    client.close();
    if (err) {
      const out = { error: grpc.status[err.code] || String(err.code), message: err.details || err.message };
      process.stdout.write(JSON.stringify(out) + '\n');
      process.exitCode = 3;
      return;
    }
    const out = { valid: response.valid, reason: response.reason, message: response.message };
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
