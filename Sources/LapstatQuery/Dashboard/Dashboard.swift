import LapstatIO

/// The web dashboard at `/`: one HTML page, a style sheet and a script, compiled into the
/// binary (DashboardHTML/CSS/JS.swift) and served as they are; the script draws its charts
/// on <canvas> from the JSON API. Nothing is fetched from anywhere else.
///
/// Caching: the page itself is `no-cache` (small, and it names the current assets); the
/// style sheet and script are referenced with `?v=<hash of their content>` and cached for a
/// year as immutable, so a new binary's assets are picked up at once and old ones never
/// linger.
enum Dashboard {
    struct Asset {
        var contentType: String
        var body: [UInt8]
        var cacheControl: String
    }

    /// FNV-1a over the style sheet and the script, as 16 hex digits.
    static let version: String = {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in css.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        for byte in javascript.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }()

    static let assets: [String: Asset] = {
        let page = Asset(contentType: "text/html; charset=utf-8",
                         body: Array(html.replacingAll("__VERSION__", with: version).utf8), cacheControl: "no-cache")
        return [
            "/": page,
            "/index.html": page,
            "/dashboard.css": Asset(contentType: "text/css; charset=utf-8", body: Array(css.utf8),
                                    cacheControl: "public, max-age=31536000, immutable"),
            "/dashboard.js": Asset(contentType: "text/javascript; charset=utf-8", body: Array(javascript.utf8),
                                   cacheControl: "public, max-age=31536000, immutable"),
        ]
    }()

    /// The asset at the request's path, or nil when the path is not one of the dashboard's.
    /// Only a request naming the current version (`?v=`) may cache it for good.
    static func response(for request: HTTPRequest) -> HTTPResponse? {
        guard let asset = assets[request.path] else { return nil }
        let cacheControl = asset.cacheControl.contains("immutable") && request.query["v"] != version ? "no-cache" : asset.cacheControl
        return HTTPResponse(status: 200, contentType: asset.contentType, body: asset.body, headers: [
            ("Cache-Control", cacheControl),
            ("X-Content-Type-Options", "nosniff"),
            // Scripts only from this service; inline style attributes are used for chart colours.
            ("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"),
        ])
    }
}

extension String {
    /// Every occurrence of `target` replaced (without Foundation).
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
