// @identity-platform/capture-web: the Identity Platform's web capture SDK.
//
// Flows (session.ts): captureFace (liveness / step-up with the flash
// challenge), captureKtp (the KTP card), ensureDeviceRegistered. Screens
// (ui/): runFaceCapture, runKtpCapture. Building blocks: the canonical digest
// and signature (digest.ts, sensors.ts, der.ts, device.ts), the flash
// schedule (flash.ts), guidance texts (guidance.ts), consent (consent.ts).

export { buildSignedBundle, MAX_FRAMES } from "./bundle.js";
export type { BuildBundleInput, CaptureBundleJson, FrameCapture, SignedBundle } from "./bundle.js";
export {
  browserClock,
  CARD_CAMERA,
  FACE_CAMERA,
  frameSize,
  FullScreenFlash,
  MIN_JPEG_QUALITY,
  VideoCamera,
} from "./browser.js";
export type { CameraProfile } from "./browser.js";
export { captureFlashFrames, captureStill, CaptureError } from "./capture.js";
export type { Camera, FlashCaptureOptions, FlashCaptureResult, Snapshot } from "./capture.js";
export { ApiError, IdentityClient } from "./client.js";
export type {
  CheckFaceLivenessResponse,
  ClientOptions,
  FacePurpose,
  Reason,
  RegisterDeviceResponse,
  StepUpResponse,
  SubmitKtpCaptureResponse,
} from "./client.js";
export {
  browserLocation,
  collectOptionalMetadata,
  CONSENT_SCOPES,
  ConsentError,
  ConsentLedger,
  MotionRecorder,
} from "./consent.js";
export type {
  CameraParameters,
  ConsentRecord,
  ConsentScope,
  Location,
  MetadataSources,
  OptionalMetadata,
} from "./consent.js";
export { derToP1363, p1363ToDer, SignatureEncodingError } from "./der.js";
export { DeviceKey, KEY_ALGORITHM, spkiToPem } from "./device.js";
export type { BundleSigner, RegisterDeviceBody } from "./device.js";
export {
  bundleSha256,
  canonicalText,
  DIGEST_PREFIX,
  DigestInputError,
  rfc3339Seconds,
  sha256Hex,
} from "./digest.js";
export type { DigestInput } from "./digest.js";
export {
  FLASH_WINDOW_MS,
  FlashChallengeError,
  FlashSafetyError,
  MAX_FLASHES_PER_WINDOW,
  mostChangesInWindow,
  planFlash,
  SafeDisplay,
} from "./flash.js";
export type { Clock, FlashChallenge, FlashDisplay, FlashPlan, FlashStep } from "./flash.js";
export { GUIDANCE, guidanceFor, guidanceForCodes } from "./guidance.js";
export type { Guidance, Locale } from "./guidance.js";
export { IndexedDbKeyStore, MemoryKeyStore } from "./keystore.js";
export type { DeviceKeyStore, StoredDevice } from "./keystore.js";
export { encodeSensorData, normaliseSensorData, SensorDataError } from "./sensors.js";
export type { SensorData, SensorReading } from "./sensors.js";
export { captureFace, captureKtp, ensureDeviceRegistered } from "./session.js";
export type {
  CaptureContext,
  CaptureOutcome,
  CaptureState,
  FaceCaptureOptions,
  KtpCaptureOptions,
} from "./session.js";
export { prompt, PROMPTS } from "./ui/texts.js";
export { CaptureView } from "./ui/view.js";
export type { FrameGuide } from "./ui/view.js";
export { runFaceCapture, runKtpCapture } from "./ui/widget.js";
export type { WidgetOptions } from "./ui/widget.js";

export const SDK_VERSION = "0.1.0";
