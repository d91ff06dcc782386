// Package updatetest holds fixtures for the tests of agent.update: a
// release signer with a throwaway minisign key, an HTTP file server on
// 127.0.0.1 with Range support and injectable faults, and (in badagent/)
// a program that passes camgate's self-test but fails its trial. None of
// it is part of the camgate binary.
package updatetest
