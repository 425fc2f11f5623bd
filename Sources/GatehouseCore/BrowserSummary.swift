/// A browser's User-Agent reduced to what a person recognizes ("Chrome on Linux"), stored with a
/// sign-in session instead of the raw header: enough to tell one's sessions apart, little to
/// fingerprint, and bounded whatever a client sends.
public enum BrowserSummary {
    /// The longest summary kept.
    public static let maxLength = 64

    public static func summarize(_ userAgent: String?) -> String? {
        guard let ua = userAgent?.prefix(1024), !ua.isEmpty else { return nil }
        let text = String(ua)
        // Order matters: Edge and Opera say "Chrome", Chrome says "Safari", headless says both.
        let browsers: [(token: String, name: String)] = [
            ("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("HeadlessChrome/", "Chrome (headless)"),
            ("Chromium/", "Chromium"), ("CriOS/", "Chrome"), ("Chrome/", "Chrome"), ("FxiOS/", "Firefox"), ("Safari/", "Safari"),
            ("curl/", "curl"), ("python-requests/", "python-requests"),
        ]
        let systems: [(token: String, name: String)] = [
            ("iPhone", "iOS"), ("iPad", "iPadOS"), ("Android", "Android"), ("CrOS", "ChromeOS"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("Linux", "Linux"), ("FreeBSD", "FreeBSD"),
        ]
        let browser = browsers.first { text.contains($0.token) }?.name
        let system = systems.first { text.contains($0.token) }?.name
        let summary: String
        switch (browser, system) {
        case let (b?, s?): summary = "\(b) on \(s)"
        case let (b?, nil): summary = b
        case let (nil, s?): summary = "a browser on \(s)"
        case (nil, nil):
            // Something else: its first product token, printable ASCII only.
            let token = text.split(separator: " ").first.map(String.init) ?? ""
            let clean = String(token.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7F }.map(Character.init))
            summary = clean.isEmpty ? "an unknown client" : clean
        }
        return String(summary.prefix(Self.maxLength))
    }
}
