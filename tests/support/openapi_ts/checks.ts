// What the generated types promise, checked by tsc --strict with flow.ts.
import type { components } from "./schema.js";

type Schemas = components["schemas"];

// A reason this document does not list still fits the Error type: reasons
// are an open set, so a client built today parses tomorrow's.
export const future: Schemas["Error"] = {
  error: {
    code: 400,
    status: "FAILED_PRECONDITION",
    reason: "A_REASON_ADDED_NEXT_YEAR",
    domain: "identity-platform",
    message: "a newer server",
    metadata: {},
    requestId: "r1",
  },
};

// Bytes are base64 strings; 64-bit integers are strings.
export const image: Schemas["Image"] = { data: "/9j/4AAQ", mediaType: "image/jpeg" };
