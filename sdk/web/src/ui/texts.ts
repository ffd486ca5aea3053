// Fixed texts of the capture screens, in Bahasa Indonesia and English.

import type { Locale } from "../guidance.js";

/** Fixed texts of the capture screens. */
export const PROMPTS = {
  faceFrame: {
    id: "Posisikan wajah Anda di dalam bingkai oval.",
    en: "Place your face inside the oval.",
  },
  cardFrame: {
    id: "Letakkan KTP di dalam bingkai, pastikan tidak ada pantulan cahaya.",
    en: "Place your KTP inside the frame, with no glare on it.",
  },
  flashWarning: {
    id: "Layar akan berkedip {count} warna selama sekitar {seconds} detik. Jika Anda sensitif terhadap cahaya berkedip (misalnya epilepsi fotosensitif), jangan lanjutkan.",
    en: "The screen will flash {count} colours for about {seconds} seconds. If you are sensitive to flashing light (for example photosensitive epilepsy), do not continue.",
  },
  continue: { id: "Lanjutkan", en: "Continue" },
  cancel: { id: "Batal", en: "Cancel" },
  retry: { id: "Coba lagi", en: "Try again" },
  capture: { id: "Ambil foto", en: "Take photo" },
  holdStill: { id: "Tahan posisi Anda…", en: "Hold still…" },
  sending: { id: "Memeriksa…", en: "Checking…" },
  passed: { id: "Berhasil. Terima kasih!", en: "Done. Thank you!" },
} as const;

export function prompt(
  key: keyof typeof PROMPTS,
  locale: Locale = "id",
  values: Record<string, string | number> = {},
): string {
  return PROMPTS[key][locale].replace(/\{(\w+)\}/g, (_, name: string) => String(values[name] ?? ""));
}
