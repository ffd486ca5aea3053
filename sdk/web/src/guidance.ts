// What a person should do next, from a reason code: the server's outcome
// reasons (capture-quality, liveness, KTP checks, match), its error reasons
// (protos/identity/common/v1/errors.proto) and the SDK's own. Short
// instructions in Bahasa Indonesia and English. The server's reason set is
// open: an unknown code gets the general message. The table's order is the
// order of importance when several reasons come back.

export type Locale = "id" | "en";

interface Entry {
  id: string;
  en: string;
  /** Whether trying again (after following the instruction) can help. */
  retry: boolean;
  /** Informational reasons are not shown to the person. */
  info?: boolean;
}

const same = (entry: Entry, ...codes: string[]) => Object.fromEntries(codes.map((c) => [c, entry]));

const DEVICE: Entry = {
  id: "Perangkat ini tidak dapat diverifikasi. Muat ulang halaman, lalu coba lagi.",
  en: "This device couldn't be verified. Reload the page and try again.",
  retry: true,
};
const USED: Entry = {
  id: "Pengambilan ini sudah dipakai. Silakan ambil ulang.",
  en: "This capture was already used. Please take a new one.",
  retry: true,
};
const IMAGE: Entry = {
  id: "Gambar tidak dapat diproses. Silakan coba lagi.",
  en: "The picture couldn't be processed. Please try again.",
  retry: true,
};
const BUSY: Entry = {
  id: "Layanan sedang sibuk. Silakan coba beberapa saat lagi.",
  en: "The service is busy. Please try again in a moment.",
  retry: true,
};
const SESSION: Entry = {
  id: "Sesi Anda telah berakhir. Silakan mulai lagi dari aplikasi.",
  en: "Your session has ended. Please start again from the app.",
  retry: false,
};
const CARD_DETAILS: Entry = {
  id: "Data pada KTP tidak sesuai dengan data yang Anda isi. Periksa kembali, lalu coba lagi.",
  en: "The card doesn't match the details you entered. Check them and try again.",
  retry: true,
};
const NIK: Entry = {
  id: "NIK tidak valid. Periksa KTP dan nomor yang Anda masukkan.",
  en: "The NIK is not valid. Check the card and the number you entered.",
  retry: true,
};
const FIELDS: Entry = {
  id: "Sebagian data KTP tidak terbaca. Foto ulang di tempat yang lebih terang.",
  en: "Some details on the card couldn't be read. Retake the photo in better light.",
  retry: true,
};
const NOT_LIVE: Entry = {
  id: "Kami belum dapat memastikan wajah asli. Gunakan wajah Anda langsung, bukan foto atau layar.",
  en: "We couldn't confirm a live person. Use your own face, not a photo or a screen.",
  retry: true,
};
const CAMERA_MISSING: Entry = {
  id: "Kamera tidak tersedia. Tutup aplikasi lain yang memakai kamera, atau gunakan perangkat lain.",
  en: "No camera available. Close other apps using the camera, or use another device.",
  retry: true,
};

export const GUIDANCE: Record<string, Entry> = {
  // --- the account, the session and the device ---------------------------------
  ...same(
    {
      id: "Akun ini tidak dapat diverifikasi. Hubungi layanan tempat Anda mendaftar.",
      en: "This account can't be verified. Contact the service you are signing up with.",
      retry: false,
    },
    "CUSTOMER_NOT_FOUND",
    "CUSTOMER_ERASED",
  ),
  REVIEW_PENDING: {
    id: "Verifikasi Anda sebelumnya sedang ditinjau. Kami akan memberi kabar setelah selesai.",
    en: "Your earlier verification is being reviewed. We'll let you know when it's done.",
    retry: false,
  },
  ...same(
    SESSION,
    "API_KEY_MISSING",
    "API_KEY_INVALID",
    "SESSION_INVALID",
    "SCOPE_INSUFFICIENT",
    "TENANT_MISSING",
  ),
  CAMERA_PERMISSION_DENIED: {
    id: "Izinkan akses kamera di pengaturan browser, lalu coba lagi.",
    en: "Allow camera access in your browser settings, then try again.",
    retry: true,
  },
  ...same(CAMERA_MISSING, "CAMERA_NOT_FOUND", "CAMERA_UNAVAILABLE"),
  BUNDLE_STALE: {
    id: "Jam perangkat Anda tidak tepat. Atur tanggal dan waktu ke otomatis, lalu coba lagi.",
    en: "Your device's clock is off. Set the date and time to automatic and try again.",
    retry: true,
  },
  ...same(
    DEVICE,
    "DEVICE_NOT_FOUND",
    "DEVICE_ALREADY_REGISTERED",
    "BUNDLE_SIGNATURE_INVALID",
    "BUNDLE_HASH_MISMATCH",
  ),
  DEVICE_REVOKED: {
    id: "Perangkat ini telah dicabut dari akun Anda. Hubungi layanan pelanggan untuk melanjutkan.",
    en: "This device was removed from your account. Contact customer support to continue.",
    retry: false,
  },
  DEVICE_LIMIT_REACHED: {
    id: "Terlalu banyak perangkat baru untuk akun ini hari ini. Lanjutkan di perangkat yang pernah Anda pakai, atau coba lagi besok.",
    en: "Too many new devices were registered for this account today. Continue on a device you used before, or try again tomorrow.",
    retry: false,
  },
  TIER_PREREQUISITE_MISSING: {
    id: "Selesaikan langkah verifikasi sebelumnya terlebih dahulu.",
    en: "Complete the earlier verification steps first.",
    retry: false,
  },
  NO_ACTIVE_ENROLLMENT: {
    id: "Belum ada data wajah untuk akun ini. Selesaikan pendaftaran terlebih dahulu.",
    en: "There is no face on record for this account yet. Finish onboarding first.",
    retry: false,
  },
  // --- the flash -----------------------------------------------------------------
  FLASH_WARNING_DECLINED: {
    id: "Anda memilih tidak melanjutkan. Pemeriksaan ini memerlukan layar berkedip warna sesaat.",
    en: "You chose not to continue. This check needs the screen to flash colours briefly.",
    retry: true,
  },
  FLASH_TIMING_UNSAFE: {
    id: "Pemeriksaan ini tidak dapat ditampilkan dengan aman. Hubungi layanan pelanggan.",
    en: "This check can't be shown safely. Please contact support.",
    retry: false,
  },
  FLASH_TIMING_MISSED: {
    id: "Pemeriksaan warna terputus. Biarkan halaman ini tetap terbuka di depan, lalu coba lagi.",
    en: "The colour check was interrupted. Keep this page open and in front, then try again.",
    retry: true,
  },
  // --- the face --------------------------------------------------------------------
  FACE_NOT_FOUND: {
    id: "Wajah tidak terlihat. Posisikan wajah di dalam bingkai oval.",
    en: "We couldn't see your face. Put your face inside the oval.",
    retry: true,
  },
  MULTIPLE_FACES: {
    id: "Pastikan hanya wajah Anda yang terlihat di kamera.",
    en: "Make sure only your face is in the picture.",
    retry: true,
  },
  // FACE_PARTIALLY_OUTSIDE: the frame's edge cuts the face; FACE_TOO_CLOSE: the
  // frame leaves too little around the face for the liveness check (capture-quality).
  ...same(
    {
      id: "Pastikan seluruh wajah berada di dalam bingkai oval.",
      en: "Keep your whole face inside the oval.",
      retry: true,
    },
    "FACE_PARTIAL",
    "FACE_PARTIALLY_OUTSIDE",
  ),
  FACE_TOO_CLOSE: {
    id: "Mundur sedikit agar seluruh wajah masuk ke bingkai oval.",
    en: "Move back a little so your whole face fits in the oval.",
    retry: true,
  },
  FACE_TOO_SMALL: {
    id: "Dekatkan wajah hingga memenuhi bingkai oval.",
    en: "Move closer so your face fills the oval.",
    retry: true,
  },
  INTER_EYE_DISTANCE_TOO_SMALL: {
    id: "Dekatkan wajah ke kamera.",
    en: "Move closer to the camera.",
    retry: true,
  },
  YAW_OUT_OF_RANGE: {
    id: "Hadapkan wajah lurus ke kamera, jangan menoleh ke samping.",
    en: "Look straight at the camera; don't turn your head to the side.",
    retry: true,
  },
  PITCH_OUT_OF_RANGE: {
    id: "Jaga dagu tetap lurus, jangan mendongak atau menunduk.",
    en: "Keep your chin level; don't tilt your head up or down.",
    retry: true,
  },
  ROLL_OUT_OF_RANGE: {
    id: "Tegakkan kepala, jangan dimiringkan.",
    en: "Hold your head upright, not tilted to one side.",
    retry: true,
  },
  UNDEREXPOSED: {
    id: "Terlalu gelap. Pindah ke tempat yang lebih terang dan hadap ke sumber cahaya.",
    en: "Too dark. Move somewhere brighter and face the light.",
    retry: true,
  },
  OVEREXPOSED: {
    id: "Terlalu terang. Hindari sinar matahari atau lampu yang langsung mengenai wajah.",
    en: "Too bright. Avoid direct sunlight or a lamp shining on your face.",
    retry: true,
  },
  FACE_TOO_BLURRY: {
    id: "Gambar buram. Tahan ponsel tetap diam dan bersihkan lensa kamera bila perlu.",
    en: "The picture is blurry. Hold still, and wipe the camera lens if needed.",
    retry: true,
  },
  FACE_LOST_BETWEEN_FRAMES: {
    id: "Jaga wajah tetap di dalam bingkai sampai warna layar berhenti berganti.",
    en: "Keep your face in the oval until the colours stop changing.",
    retry: true,
  },
  FACE_CHANGED_BETWEEN_FRAMES: {
    id: "Hanya Anda yang boleh berada di depan kamera sampai warna layar berhenti berganti.",
    en: "Only you should be in front of the camera until the colours stop changing.",
    retry: true,
  },
  FLASH_RESPONSE_MISSING: {
    id: "Cahaya layar tidak terlihat di wajah Anda. Dekatkan wajah, naikkan kecerahan layar, dan hindari tempat yang terlalu terang.",
    en: "We couldn't see the screen's light on your face. Move closer, turn the screen brightness up and avoid very bright places.",
    retry: true,
  },
  FLASH_ORDER_MISMATCH: {
    id: "Pemeriksaan warna tidak cocok. Tetap menatap layar dan jangan bergerak saat warna berganti.",
    en: "The colour check didn't match. Keep looking at the screen and hold still while the colours change.",
    retry: true,
  },
  TOO_FEW_FRAMES: {
    id: "Pengambilan gambar terputus. Silakan coba lagi.",
    en: "The capture was interrupted. Please try again.",
    retry: true,
  },
  ...same(NOT_LIVE, "PAD_ATTACK_SUSPECTED", "LIVENESS_FAILED"),
  QUALITY_FAILED: {
    id: "Kualitas gambar kurang baik. Cari tempat yang terang dan tahan posisi wajah di dalam oval.",
    en: "The picture quality wasn't good enough. Find good light and keep your face in the oval.",
    retry: true,
  },
  FACE_MISMATCH: {
    id: "Wajah tidak cocok dengan data yang terdaftar.",
    en: "Your face didn't match the one on record.",
    retry: true,
  },
  DUPLICATE_FACE: {
    id: "Verifikasi ini perlu ditinjau petugas. Kami akan mengabari Anda.",
    en: "This verification needs a review by our team. We'll let you know.",
    retry: false,
  },
  // --- the KTP card --------------------------------------------------------------------
  CARD_FLASH_RESPONSE_MISSING: {
    id: "Cahaya layar tidak terlihat pada kartu. Foto e-KTP asli (bukan gambar di layar), lebih dekat, layar lebih terang.",
    en: "The screen's light didn't show on the card. Use your original e-KTP, not a screen; move closer, screen brighter.",
    retry: true,
  },
  CARD_NOT_FOUND: {
    id: "KTP tidak terdeteksi. Letakkan seluruh KTP di dalam bingkai, di atas permukaan polos yang gelap.",
    en: "We couldn't find the card. Place the whole KTP inside the frame, on a plain dark surface.",
    retry: true,
  },
  CARD_TOO_SMALL: {
    id: "Dekatkan kamera hingga KTP memenuhi bingkai.",
    en: "Move closer so the card fills the frame.",
    retry: true,
  },
  CARD_GLARE: {
    id: "Ada pantulan cahaya pada KTP. Miringkan sedikit atau jauhi lampu langsung.",
    en: "There is glare on the card. Tilt it slightly or move away from direct light.",
    retry: true,
  },
  CARD_TOO_BLURRY: {
    id: "Foto KTP buram. Tahan ponsel tetap diam dan tunggu kamera fokus.",
    en: "The card is blurry. Hold the phone still and let the camera focus.",
    retry: true,
  },
  CARD_PARTIALLY_OUTSIDE: {
    id: "Sebagian KTP berada di luar bingkai. Pastikan keempat sudut KTP terlihat.",
    en: "Part of the card is outside the frame. Keep all four corners of the card in view.",
    retry: true,
  },
  CARD_HIGHLIGHT_ON_TEXT: {
    id: "Ada pantulan cahaya di atas NIK, nama, atau tanggal lahir. Miringkan sedikit KTP lalu foto ulang.",
    en: "A reflection covers the NIK, name or birth date. Tilt the card slightly and retake.",
    retry: true,
  },
  NIK_READS_DISAGREE: {
    id: "NIK tidak terbaca dengan pasti. Foto ulang lebih dekat, tajam, dan tanpa pantulan.",
    en: "The NIK could not be read reliably. Retake closer, sharp and without reflections.",
    retry: true,
  },
  NIK_UNCONFIRMED: {
    id: "NIK pada KTP belum dapat dipastikan. Foto ulang KTP, atau masukkan NIK secara manual.",
    en: "The NIK on the card could not be confirmed. Retake the card, or enter the NIK.",
    retry: true,
  },
  PORTRAIT_MISSING: {
    id: "Foto pada KTP harus terlihat. Jangan tutupi dengan jari.",
    en: "The photo on the card must be visible. Don't cover it with your fingers.",
    retry: true,
  },
  HALFTONE_PRINT_SUSPECTED: {
    id: "Foto KTP asli Anda, bukan hasil cetak atau salinan berwarna.",
    en: "Photograph your original card, not a printed copy of it.",
    retry: true,
  },
  PHOTOCOPY_SUSPECTED: {
    id: "Foto KTP asli Anda, bukan fotokopi atau cetakan hitam-putih.",
    en: "Photograph your original card, not a photocopy or a black-and-white print.",
    retry: true,
  },
  SCREEN_RECAPTURE_SUSPECTED: {
    id: "Foto KTP asli Anda, bukan gambar KTP di layar.",
    en: "Photograph your physical card, not a picture of it on a screen.",
    retry: true,
  },
  LAYOUT_INCONSISTENT: {
    id: "KTP tidak dapat diverifikasi. Gunakan e-KTP asli Anda.",
    en: "This card couldn't be verified. Use your original e-KTP.",
    retry: true,
  },
  NIK_UNREADABLE: {
    id: "NIK tidak terbaca. Pastikan KTP tajam, cukup terang, dan tidak tertutup.",
    en: "We couldn't read the NIK. Make sure the card is sharp, well lit and not covered.",
    retry: true,
  },
  ...same(FIELDS, "FIELD_MISSING", "FIELD_LOW_CONFIDENCE"),
  ...same(
    CARD_DETAILS,
    "NIK_MISMATCH_SUBMITTED",
    "NIK_BIRTH_DATE_MISMATCH",
    "NIK_GENDER_MISMATCH",
    "FIELD_MISMATCH_SUBMITTED",
  ),
  ...same(
    NIK,
    "NIK_INVALID",
    "NIK_LENGTH",
    "NIK_NOT_NUMERIC",
    "NIK_PROVINCE_UNKNOWN",
    "NIK_REGENCY_UNKNOWN",
    "NIK_BIRTH_DATE_INVALID",
    "NIK_SERIAL_ZERO",
  ),
  // --- the capture as a whole --------------------------------------------------------
  CHALLENGE_EXPIRED: {
    id: "Waktu habis. Silakan mulai lagi.",
    en: "That took too long. Please start again.",
    retry: true,
  },
  ...same(
    USED,
    "CHALLENGE_ALREADY_USED",
    "NONCE_REPLAYED",
    "STEP_UP_REPLAYED_FOR_OTHER_ACTION",
    "STEP_UP_REPLAYED_FOR_OTHER_REFERENCE",
    "CHALLENGE_NOT_FOUND",
    "CHALLENGE_MISMATCH",
  ),
  ...same(
    IMAGE,
    "IMAGE_EMPTY",
    "IMAGE_UNDECODABLE",
    "IMAGE_TOO_LARGE",
    "IMAGE_BUDGET_EXCEEDED",
    "IMAGE_MULTIPLE_FACES",
    "IMAGE_TOO_SMALL",
    "PAYLOAD_TOO_LARGE",
  ),
  ...same(
    {
      id: "Terjadi kesalahan pada pengambilan ini. Silakan coba lagi.",
      en: "Something went wrong with this capture. Please try again.",
      retry: true,
    },
    "INVALID_FIELD",
    "MALFORMED_REQUEST",
    "INVALID_BASE64",
  ),
  RESOLUTION_TOO_LOW: {
    id: "Resolusi kamera terlalu rendah. Coba kamera atau perangkat lain.",
    en: "This camera's resolution is too low. Try another camera or device.",
    retry: false,
  },
  RATE_LIMITED: {
    id: "Terlalu banyak percobaan. Tunggu sebentar, lalu coba lagi.",
    en: "Too many attempts. Wait a minute, then try again.",
    retry: true,
  },
  // The SDK session token (minted by the partner's backend): expired, revoked,
  // another customer's, this page's origin is not allowed, or the page sent a
  // step-up reference image (only the partner's backend may). Only the app can
  // start a new session.
  ...same(
    {
      id: "Sesi verifikasi berakhir. Kembali ke aplikasi dan mulai lagi.",
      en: "This verification session has ended. Go back to the app and start again.",
      retry: false,
    },
    "SDK_SESSION_INVALID",
    "SDK_SESSION_CUSTOMER_MISMATCH",
    "SDK_SESSION_ROUTE_FORBIDDEN",
    "ORIGIN_NOT_ALLOWED",
    "REFERENCE_IMAGE_FORBIDDEN",
  ),
  // The gateway stopped waiting for the photos (GATEWAY_BODY_READ_TIMEOUT_SECONDS).
  REQUEST_BODY_TIMEOUT: {
    id: "Koneksi terlalu lambat untuk mengirim foto. Pindah ke jaringan yang lebih kuat, lalu coba lagi.",
    en: "The connection is too slow to send the photos. Move to a stronger network, then try again.",
    retry: true,
  },
  NETWORK_ERROR: {
    id: "Tidak ada koneksi. Periksa internet Anda, lalu coba lagi.",
    en: "No connection. Check your internet and try again.",
    retry: true,
  },
  ...same(
    BUSY,
    "DEPENDENCY_UNAVAILABLE",
    "NOT_READY",
    "DEADLINE_EXCEEDED",
    "CIRCUIT_OPEN",
    "INTERNAL",
    "CAPTURE_IN_PROGRESS",
  ),
  PAD_MODEL_NOT_CONFIGURED: { id: "", en: "", retry: false, info: true },
};

const FALLBACK: Entry = {
  id: "Verifikasi belum berhasil. Silakan coba lagi.",
  en: "The verification didn't go through. Please try again.",
  retry: true,
};

export interface Guidance {
  code: string;
  message: string;
  retry: boolean;
}

export function guidanceFor(code: string, locale: Locale = "id"): Guidance {
  const entry = GUIDANCE[code] ?? FALLBACK;
  return { code, message: entry[locale], retry: entry.retry };
}

const ORDER = new Map(Object.keys(GUIDANCE).map((code, i) => [code, i]));

/**
 * The instructions to show for a set of reason codes: most important first,
 * informational ones left out, the same instruction once, at most `limit`.
 */
export function guidanceForCodes(codes: readonly string[], locale: Locale = "id", limit = 2) {
  const shown = [...new Set(codes)]
    .filter((code) => !GUIDANCE[code]?.info)
    .sort((a, b) => (ORDER.get(a) ?? Infinity) - (ORDER.get(b) ?? Infinity))
    .map((code) => guidanceFor(code, locale));
  const seen = new Set<string>();
  return shown.filter((g) => !seen.has(g.message) && seen.add(g.message)).slice(0, limit);
}
