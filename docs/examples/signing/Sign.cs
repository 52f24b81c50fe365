// Sign a request to dipgw with HMAC-SHA256, using only the .NET base class library.
//
//     Sign SECRET HOSPITAL METHOD PATH BODY_FILE [TIMESTAMP [NONCE [BASE_URL]]]
//
// Build: in a .NET 6+ console project (dotnet run -- ARGS), or with Mono:
//     mcs -r:System.Net.Http.dll Sign.cs && mono Sign.exe ARGS
// TIMESTAMP and NONCE: "-" (or left out) for the current time and a fresh random nonce.
// BASE_URL (e.g. https://dipgw.example.gov.cn): also send the request and print the answer.
// Prints the SHA-256 of the canonical string (compare it with the one a 401 answer shows)
// and the four headers. The canonical string is specified in docs/upload-format.md.

using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Http;
using System.Security.Cryptography;
using System.Text;

public static class Sign
{
    static string Hex(byte[] bytes)
    {
        var text = new StringBuilder(bytes.Length * 2);
        foreach (var b in bytes) text.Append(b.ToString("x2"));  // lowercase hex
        return text.ToString();
    }

    /// Five lines joined by LF (no LF at the end), UTF-8; the body digest in lowercase hex.
    public static byte[] CanonicalString(string method, string path, string timestamp, string nonce, byte[] body)
    {
        string bodyDigest;
        using (var sha = SHA256.Create()) bodyDigest = Hex(sha.ComputeHash(body));
        var text = string.Join("\n", method.ToUpperInvariant(), path, timestamp, nonce, bodyDigest);
        return new UTF8Encoding(false).GetBytes(text);
    }

    public static List<KeyValuePair<string, string>> SignedHeaders(
        string secret, string hospital, string method, string path, byte[] body, string timestamp, string nonce)
    {
        if (timestamp == "-") timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString();
        if (nonce == "-")  // 24 of [A-Za-z0-9_-]
        {
            var random = new byte[18];
            using (var rng = RandomNumberGenerator.Create()) rng.GetBytes(random);
            nonce = Convert.ToBase64String(random).Replace('+', '-').Replace('/', '_');
        }
        string signature;
        using (var hmac = new HMACSHA256(Encoding.UTF8.GetBytes(secret)))
            signature = Hex(hmac.ComputeHash(CanonicalString(method, path, timestamp, nonce, body)));
        return new List<KeyValuePair<string, string>> {
            new KeyValuePair<string, string>("X-Dipgw-Hospital", hospital),
            new KeyValuePair<string, string>("X-Dipgw-Timestamp", timestamp),
            new KeyValuePair<string, string>("X-Dipgw-Nonce", nonce),
            new KeyValuePair<string, string>("X-Dipgw-Signature", signature),
        };
    }

    public static int Main(string[] args)
    {
        if (args.Length < 5)
        {
            Console.Error.WriteLine("usage: Sign SECRET HOSPITAL METHOD PATH BODY_FILE [TIMESTAMP [NONCE [BASE_URL]]]");
            return 2;
        }
        string method = args[2], path = args[3];
        byte[] body = File.ReadAllBytes(args[4]);
        var headers = SignedHeaders(args[0], args[1], method, path, body,
                                    args.Length > 5 ? args[5] : "-", args.Length > 6 ? args[6] : "-");
        byte[] canonical = CanonicalString(method, path, headers[1].Value, headers[2].Value, body);
        using (var sha = SHA256.Create())
            Console.WriteLine("canonical-sha256: " + Hex(sha.ComputeHash(canonical)));
        foreach (var header in headers) Console.WriteLine(header.Key + ": " + header.Value);
        if (args.Length > 7)
        {
            using (var http = new HttpClient())
            {
                var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()),
                                                     args[7].TrimEnd('/') + path);
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
                foreach (var header in headers) request.Headers.TryAddWithoutValidation(header.Key, header.Value);
                var answer = http.SendAsync(request).Result;
                Console.WriteLine("status: " + (int)answer.StatusCode);
                Console.WriteLine(answer.Content.ReadAsStringAsync().Result);
            }
        }
        return 0;
    }
}
