// The gateway's capture routes, over fetch, in the gateway's JSON mapping
// (camelCase names, enums by name, bytes as base64). The SDK authenticates
// with a short-lived SDK session token minted by the partner's backend; a
// partner API key must never reach a browser.

import type { CaptureBundleJson } from "./bundle.js";
import type { RegisterDeviceBody } from "./device.js";
import type { FlashChallenge } from "./flash.js";

export type FacePurpose = "face_liveness" | "step_up";

const PURPOSE_ENUM: Record<FacePurpose, string> = {
  face_liveness: "CHALLENGE_PURPOSE_FACE_LIVENESS",
  step_up: "CHALLENGE_PURPOSE_STEP_UP",
};

export interface Reason {
  code: string;
  message: string;
}

export interface Verification {
  verificationId: string;
  customerId: string;
  kind: string;
  outcome: string;
  reasons: Reason[];
  scores?: Record<string, number>;
}

export interface RegisterDeviceResponse {
  deviceId: string;
  customerId: string;
  keyFingerprint: string;
  registeredAt: string;
  created: boolean;
}

export interface CheckFaceLivenessResponse {
  verification: Verification;
  liveness: { live: boolean; padScore: number; flashScore: number; decisionBasis: string };
  qualityReasons: Reason[];
  enrollmentId: string;
  tier: string;
}

export interface StepUpResponse {
  allow: boolean;
  reasons: Reason[];
  verificationId: string;
  /** True when this answers the same bundle sent again (absent otherwise). */
  replayed?: boolean;
  /** The action the decision was made for (absent when none was sent). */
  action?: string;
  /** What the live face was matched against: "enrolled" for the SDK (only the
   * partner's backend may send a reference image, "partner_image"). */
  referenceSource?: string;
}

export interface SubmitKtpCaptureResponse {
  verification: Verification;
  replayed: boolean;
  fieldChecks: { name: string; ocrConfidence: number; matchesSubmitted: boolean }[];
  enrollmentId: string;
  tier: string;
}

/** An error answer of the gateway: {"error": {code, status, reason, message, ...}}. */
export class ApiError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly status: string,
    readonly reason: string,
    message: string,
    readonly requestId = "",
    readonly metadata: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /** The gateway's origin, e.g. "https://id.example.com". */
  baseUrl: string;
  /** The SDK session token, or a function that returns a fresh one. */
  sessionToken: string | (() => string | Promise<string>);
  fetch?: typeof fetch;
}

export class IdentityClient {
  private readonly fetcher: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.fetcher = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private async post<T>(path: string, body: unknown): Promise<T> {
    const token =
      typeof this.options.sessionToken === "function"
        ? await this.options.sessionToken()
        : this.options.sessionToken;
    let response: Response;
    try {
      response = await this.fetcher(new URL(path, this.options.baseUrl).toString(), {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "UNAVAILABLE", "NETWORK_ERROR", "the gateway could not be reached");
    }
    const payload = await response.json().catch(() => undefined);
    if (!response.ok) {
      const error = (payload as { error?: Record<string, unknown> } | undefined)?.error ?? {};
      throw new ApiError(
        response.status,
        String(error.status ?? "UNKNOWN"),
        String(error.reason ?? "UNKNOWN"),
        String(error.message ?? `HTTP ${response.status}`),
        String(error.requestId ?? ""),
        (error.metadata as Record<string, string> | undefined) ?? {},
      );
    }
    return payload as T;
  }

  registerDevice(body: RegisterDeviceBody) {
    return this.post<RegisterDeviceResponse>("/api/identity/devices/register", body);
  }

  async issueFaceChallenge(customerId: string, purpose: FacePurpose): Promise<FlashChallenge> {
    const answer = await this.post<{ challenge: FlashChallengeJson }>(
      "/api/identity/face/flash-challenge",
      { customerId, purpose: PURPOSE_ENUM[purpose] },
    );
    return challengeFromJson(answer.challenge);
  }

  async issueKtpChallenge(customerId: string): Promise<FlashChallenge> {
    const answer = await this.post<{ challenge: FlashChallengeJson }>(
      "/api/identity/document/ktp/challenge",
      { customerId },
    );
    return challengeFromJson(answer.challenge);
  }

  checkFaceLiveness(customerId: string, challengeId: string, bundle: CaptureBundleJson) {
    return this.post<CheckFaceLivenessResponse>("/api/identity/face/liveness", {
      customerId,
      challengeId,
      bundle,
    });
  }

  stepUp(customerId: string, challengeId: string, bundle: CaptureBundleJson, action: string) {
    return this.post<StepUpResponse>("/api/identity/auth/step-up", {
      customerId,
      challengeId,
      bundle,
      action,
    });
  }

  submitKtpCapture(
    customerId: string,
    challengeId: string,
    bundle: CaptureBundleJson,
    ocrFields: Record<string, string> = {},
  ) {
    return this.post<SubmitKtpCaptureResponse>("/api/identity/document/ktp/capture", {
      customerId,
      challengeId,
      bundle,
      ocrFields,
    });
  }
}

interface FlashChallengeJson {
  challengeId: string;
  purpose: string;
  sequence: { hex: string }[];
  flashDurationMs: number;
  issuedAt?: string;
  expiresAt?: string;
}

function challengeFromJson(json: FlashChallengeJson): FlashChallenge {
  const challenge: FlashChallenge = {
    challengeId: json.challengeId,
    purpose: json.purpose,
    sequence: (json.sequence ?? []).map((c) => c.hex),
    flashDurationMs: Number(json.flashDurationMs),
  };
  if (json.issuedAt) challenge.issuedAt = json.issuedAt;
  if (json.expiresAt) challenge.expiresAt = json.expiresAt;
  return challenge;
}
