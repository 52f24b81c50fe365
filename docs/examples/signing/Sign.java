// Sign a request to dipgw with HMAC-SHA256, using only the Java standard library (17+).
//
//     java Sign.java SECRET HOSPITAL METHOD PATH BODY_FILE [TIMESTAMP [NONCE [BASE_URL]]]
//
// TIMESTAMP and NONCE: "-" (or left out) for the current time and a fresh random nonce.
// BASE_URL (e.g. https://dipgw.example.gov.cn): also send the request and print the answer.
// Prints the SHA-256 of the canonical string (compare it with the one a 401 answer shows)
// and the four headers. The canonical string is specified in docs/upload-format.md.

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class Sign {
    /** Five lines joined by LF (no LF at the end), UTF-8; the body digest in lowercase hex. */
    static byte[] canonicalString(String method, String path, String timestamp, String nonce,
                                  byte[] body) throws Exception {
        String bodyDigest = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(body));
        String text = String.join("\n", method.toUpperCase(Locale.ROOT), path, timestamp, nonce, bodyDigest);
        return text.getBytes(StandardCharsets.UTF_8);
    }

    static Map<String, String> signedHeaders(String secret, String hospital, String method,
                                             String path, byte[] body, String timestamp,
                                             String nonce) throws Exception {
        if (timestamp.equals("-")) {
            timestamp = Long.toString(System.currentTimeMillis() / 1000);
        }
        if (nonce.equals("-")) {  // 24 of [A-Za-z0-9_-]
            byte[] random = new byte[18];
            new SecureRandom().nextBytes(random);
            nonce = Base64.getUrlEncoder().withoutPadding().encodeToString(random);
        }
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        byte[] canonical = canonicalString(method, path, timestamp, nonce, body);
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("X-Dipgw-Hospital", hospital);
        headers.put("X-Dipgw-Timestamp", timestamp);
        headers.put("X-Dipgw-Nonce", nonce);
        headers.put("X-Dipgw-Signature", HexFormat.of().formatHex(mac.doFinal(canonical)));
        return headers;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 5) {
            System.err.println("usage: java Sign.java SECRET HOSPITAL METHOD PATH BODY_FILE "
                + "[TIMESTAMP [NONCE [BASE_URL]]]");
            System.exit(2);
        }
        String method = args[2], path = args[3];
        byte[] body = Files.readAllBytes(Path.of(args[4]));
        String timestamp = args.length > 5 ? args[5] : "-";
        String nonce = args.length > 6 ? args[6] : "-";
        Map<String, String> headers = signedHeaders(args[0], args[1], method, path, body, timestamp, nonce);
        byte[] canonical = canonicalString(method, path, headers.get("X-Dipgw-Timestamp"),
                                           headers.get("X-Dipgw-Nonce"), body);
        System.out.println("canonical-sha256: "
            + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(canonical)));
        headers.forEach((name, value) -> System.out.println(name + ": " + value));
        if (args.length > 7) {
            HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(args[7].replaceAll("/$", "") + path))
                .version(HttpClient.Version.HTTP_1_1)
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .method(method.toUpperCase(Locale.ROOT), HttpRequest.BodyPublishers.ofByteArray(body));
            headers.forEach(request::header);
            HttpResponse<String> answer = HttpClient.newHttpClient()
                .send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
            System.out.println("status: " + answer.statusCode());
            System.out.println(answer.body());
        }
    }
}
