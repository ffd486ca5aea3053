// Must NOT compile: the request needs its required externalId
// (tests/e2e/test_generated_clients.py expects tsc to refuse this file).
import type { components } from "./schema.js";

export const empty: components["schemas"]["CreateCustomerRequest"] = {};
