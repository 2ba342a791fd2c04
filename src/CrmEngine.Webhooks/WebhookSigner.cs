using System.Security.Cryptography;
using System.Text;

namespace CrmEngine.Webhooks;

/// <summary>
/// <c>X-Crm-Signature: sha256=&lt;hex&gt;</c>: HMAC-SHA256, keyed with the subscription secret (its UTF-8 bytes), over
/// <c>"&lt;X-Crm-Timestamp&gt;.&lt;body&gt;"</c>. The timestamp inside the signed text lets a receiver refuse replays of an
/// old, correctly signed request.
/// </summary>
internal static class WebhookSigner
{
    public const string Scheme = "sha256=";

    public static string Sign(string secret, long unixSeconds, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.UTF8.GetBytes(unixSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".");
        var signed = new byte[prefix.Length + body.Length];
        prefix.CopyTo(signed, 0);
        body.CopyTo(signed.AsSpan(prefix.Length));
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed);
        return Scheme + Convert.ToHexStringLower(mac);
    }
}
