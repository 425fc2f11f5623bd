import GatehouseCore
import Testing

@Suite("Browser summaries")
struct BrowserSummaryTests {
    @Test("real User-Agent strings become what a person recognizes")
    func known() {
        let cases: [(String, String)] = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
                "Chrome (headless) on Linux"
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows"
            ),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1",
                "Chrome on iOS"
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
                "Chrome on Android"
            ),
            ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
            ("curl/8.5.0", "curl"),
        ]
        for (ua, expected) in cases { #expect(BrowserSummary.summarize(ua) == expected, "\(ua)") }
    }

    @Test("nothing, junk and hostile headers stay short and printable")
    func hostile() {
        #expect(BrowserSummary.summarize(nil) == nil)
        #expect(BrowserSummary.summarize("") == nil)
        #expect(BrowserSummary.summarize("x\u{0}\u{1b}[31my\u{202e}z") == "x[31myz")
        #expect(BrowserSummary.summarize(String(repeating: "A", count: 100_000))!.count == BrowserSummary.maxLength)
        #expect(BrowserSummary.summarize("\u{7}\u{7}") == "an unknown client")
        #expect(BrowserSummary.summarize("<script>alert(1)</script>") == "<script>alert(1)</script>")  // escaped by the page, stored as given
    }
}
