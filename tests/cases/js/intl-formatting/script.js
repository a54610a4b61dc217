const d = new Date(Date.UTC(2026, 11, 5, 14, 30));
const utc = { timeZone: "UTC" };
return {
  nlBE: (1234.5).toLocaleString("nl-BE"),
  de: new Intl.NumberFormat("de-DE", { maximumFractionDigits: 2 }).format(1234567.891),
  fr: (1234.5).toLocaleString("fr"),
  en: (1234.5).toLocaleString("en-US"),
  dateNl: d.toLocaleDateString("nl-BE", utc),
  longNl: new Intl.DateTimeFormat("nl", { dateStyle: "long", ...utc }).format(d),
  longFr: new Intl.DateTimeFormat("fr-BE", { dateStyle: "full", ...utc }).format(d),
  timeDe: new Intl.DateTimeFormat("de", { timeStyle: "short", ...utc }).format(d),
  plural: ["en", "pl"].map((l) => [1, 2, 5].map((n) => new Intl.PluralRules(l).select(n)).join(" ")),
  sorted: ["z", "ä", "a"].sort(new Intl.Collator("de").compare),
  compare: "a".localeCompare("B", "en"),
  supported: Intl.NumberFormat.supportedLocalesOf(["nl-BE", "xh", "ja-JP"]),
  rootFallback: (1234.5).toLocaleString("xh"),
  list: new Intl.ListFormat("nl", { type: "conjunction" }).format(["a", "b", "c"]),
  resolved: new Intl.NumberFormat("nl-BE").resolvedOptions().locale,
};
