using System.Security.Cryptography;
using System.Text;
using CrmEngine.Mail.Outbox;

namespace CrmEngine.Mail.Unsubscribe;

/// <summary>What a valid unsubscribe token says: which message, customer and purpose.</summary>
internal sealed record UnsubscribeClaim(string MessageId, string CustomerId, string Purpose);

/// <summary>
/// Signed one-click unsubscribe tokens: <c>base64url(payload) "." base64url(HMAC-SHA256(key, payload))</c>, payload
/// <c>v1 \u001F message id \u001F customer id \u001F purpose</c>. The 32-byte key is generated once and kept in the store
/// (<c>_mail_settings</c>), so it travels with backups and links stay valid after a restore; it is never logged.
/// </summary>
internal sealed class UnsubscribeTokens
{
    private const string SettingName = "unsubscribe-key";
    private const char Separator = '\u001F';
    private readonly OutboxStore _store;
    private byte[]? _key;

    public UnsubscribeTokens(OutboxStore store) => _store = store;

    private async ValueTask<byte[]> KeyAsync()
    {
        if (Volatile.Read(ref _key) is { } key)
        {
            return key;
        }

        var stored = await _store.GetOrCreateSettingAsync(SettingName, () => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))).ConfigureAwait(false);
        key = Convert.FromBase64String(stored);
        Volatile.Write(ref _key, key);
        return key;
    }

    public async Task<string> CreateAsync(string messageId, string customerId, string purpose)
    {
        var payload = Encoding.UTF8.GetBytes(string.Join(Separator, "v1", messageId, customerId, purpose));
        var signature = HMACSHA256.HashData(await KeyAsync().ConfigureAwait(false), payload);
        return Base64Url(payload) + "." + Base64Url(signature);
    }

    /// <summary>The claim of a token whose signature is right; null for anything else (malformed, forged, tampered).</summary>
    public async Task<UnsubscribeClaim?> VerifyAsync(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 2048)
        {
            return null;
        }

        var dot = token.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || dot == token.Length - 1)
        {
            return null;
        }

        byte[] payload, signature;
        try
        {
            payload = FromBase64Url(token[..dot]);
            signature = FromBase64Url(token[(dot + 1)..]);
        }
        catch (FormatException)
        {
            return null;
        }

        var expected = HMACSHA256.HashData(await KeyAsync().ConfigureAwait(false), payload);
        if (!CryptographicOperations.FixedTimeEquals(expected, signature))
        {
            return null;
        }

        var parts = Encoding.UTF8.GetString(payload).Split(Separator);
        return parts is ["v1", { Length: > 0 } message, { Length: > 0 } customer, { Length: > 0 } purpose]
            ? new UnsubscribeClaim(message, customer, purpose)
            : null;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[] FromBase64Url(string text)
    {
        var s = text.Replace('-', '+').Replace('_', '/');
        s += (s.Length % 4) switch { 2 => "==", 3 => "=", 0 => "", _ => throw new FormatException("bad length") };
        return Convert.FromBase64String(s);
    }
}
