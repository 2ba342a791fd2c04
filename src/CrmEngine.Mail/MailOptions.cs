using System.ComponentModel.DataAnnotations;

namespace CrmEngine.Mail;

/// <summary>How the sender talks to the SMTP server (MailKit's <c>SecureSocketOptions</c>, by the names IT staff know).</summary>
public enum SmtpTlsMode
{
    /// <summary>Plain SMTP, no TLS (a relay on the same host or a trusted network).</summary>
    None,
    /// <summary>STARTTLS required (port 587).</summary>
    StartTls,
    /// <summary>TLS from the first byte (SMTPS, port 465).</summary>
    SslOnConnect,
    /// <summary>SMTPS on port 465, otherwise STARTTLS when the server offers it.</summary>
    Auto,
}

/// <summary>
/// Section <c>Mail</c>. Flat keys (no sub-sections) so <c>crm config check</c> names every bad key. The password is
/// never logged: <see cref="ToString"/> shows only whether one is set.
/// </summary>
public sealed class MailOptions : IValidatableObject
{
    public const string Section = "Mail";

    /// <summary>Runs the background sender. When false, messages are still enqueued (and wait).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>SMTP server. Empty: no server; messages are written as <c>.eml</c> files to <see cref="PickupDirectory"/>.</summary>
    public string? SmtpHost { get; set; }

    /// <summary>0 picks the usual port of the TLS mode: 25 (None), 587 (StartTls, Auto), 465 (SslOnConnect).</summary>
    [Range(0, 65535)]
    public int SmtpPort { get; set; }

    public SmtpTlsMode SmtpTls { get; set; } = SmtpTlsMode.Auto;

    /// <summary>User name for SMTP AUTH; empty: no authentication.</summary>
    public string? SmtpUser { get; set; }

    /// <summary>SMTP password. Put it in an environment variable (<c>CRM_Mail__SmtpPassword</c>), not in a file others read.</summary>
    public string? SmtpPassword { get; set; }

    /// <summary>
    /// SHA-1 or SHA-256 thumbprint (hex) of a server certificate to accept although it does not chain to a trusted root
    /// (an internal relay with a self-signed certificate). Empty: the normal certificate checks apply.
    /// </summary>
    public string? SmtpCertificateThumbprint { get; set; }

    /// <summary>Timeout of one SMTP command.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan SmtpTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Where messages go when no SMTP host is set; relative to the content root. Default: <c>&lt;data folder&gt;/pickup</c>.</summary>
    public string? PickupDirectory { get; set; }

    /// <summary>The sender (From) address; also the domain of every Message-Id.</summary>
    [Required(AllowEmptyStrings = false)]
    public string FromAddress { get; set; } = "crm@localhost";

    public string FromName { get; set; } = "CrmEngine";

    /// <summary>Sender workers, each with its own SMTP connection.</summary>
    [Range(1, 32)]
    public int Workers { get; set; } = 2;

    /// <summary>At most this many messages a minute over all workers; 0: no limit.</summary>
    [Range(0, 1_000_000)]
    public int MessagesPerMinute { get; set; } = 600;

    /// <summary>Wait before the second attempt after a transient failure; doubled after each further failure.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest wait between two attempts.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "7.00:00:00")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Attempts before a message that keeps failing transiently is marked Failed.</summary>
    [Range(1, 1000)]
    public int MaxAttempts { get; set; } = 12;

    /// <summary>How often the sender looks for messages that became due (it is also woken by every enqueue).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Base of the one-click unsubscribe link (<c>{base}/unsubscribe?token=...</c>), as customers reach the API from
    /// outside (for example <c>https://crm.example.com</c>). Default: the API's first listen address.
    /// </summary>
    public string? UnsubscribeBaseUrl { get; set; }

    /// <summary>Culture for money and dates in templates when the request names none.</summary>
    [Required(AllowEmptyStrings = false)]
    public string Culture { get; set; } = "en-US";

    /// <summary>The port used for <see cref="SmtpPort"/> 0.</summary>
    public int EffectivePort => SmtpPort != 0 ? SmtpPort : SmtpTls switch
    {
        SmtpTlsMode.None => 25,
        SmtpTlsMode.SslOnConnect => 465,
        _ => 587,
    };

    public bool UsesPickup => string.IsNullOrWhiteSpace(SmtpHost);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!MimeKit.MailboxAddress.TryParse(FromAddress, out var from) || string.IsNullOrEmpty(from.Address) || !from.Address.Contains('@', StringComparison.Ordinal))
        {
            yield return new ValidationResult($"'{FromAddress}' is not an e-mail address", [nameof(FromAddress)]);
        }

        if (RetryMaxDelay < RetryBaseDelay)
        {
            yield return new ValidationResult("must not be shorter than RetryBaseDelay", [nameof(RetryMaxDelay)]);
        }

        if (!string.IsNullOrWhiteSpace(UnsubscribeBaseUrl)
            && (!Uri.TryCreate(UnsubscribeBaseUrl, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp)))
        {
            yield return new ValidationResult($"'{UnsubscribeBaseUrl}' is not an absolute http(s) URL", [nameof(UnsubscribeBaseUrl)]);
        }

        if (!string.IsNullOrWhiteSpace(SmtpCertificateThumbprint)
            && (SmtpCertificateThumbprint.Replace(":", "", StringComparison.Ordinal).Length is not (40 or 64)
                || !SmtpCertificateThumbprint.Replace(":", "", StringComparison.Ordinal).All(Uri.IsHexDigit)))
        {
            yield return new ValidationResult("must be a SHA-1 (40) or SHA-256 (64) hex thumbprint", [nameof(SmtpCertificateThumbprint)]);
        }

        System.Globalization.CultureInfo? culture = null;
        try
        {
            culture = System.Globalization.CultureInfo.GetCultureInfo(Culture);
        }
        catch (System.Globalization.CultureNotFoundException)
        {
        }

        if (culture is null)
        {
            yield return new ValidationResult($"'{Culture}' is not a known culture", [nameof(Culture)]);
        }

        if (!string.IsNullOrEmpty(SmtpPassword) && string.IsNullOrWhiteSpace(SmtpUser))
        {
            yield return new ValidationResult("a password is set but no SmtpUser", [nameof(SmtpUser)]);
        }
    }

    /// <summary>For the start-up log line: everything but the password.</summary>
    public override string ToString() => UsesPickup
        ? $"pickup folder (no SmtpHost), {Workers} worker(s), {(MessagesPerMinute == 0 ? "no rate limit" : MessagesPerMinute + "/min")}"
        : $"smtp {SmtpHost}:{EffectivePort} tls {SmtpTls}, user {(string.IsNullOrEmpty(SmtpUser) ? "(none)" : SmtpUser)}, " +
          $"password {(string.IsNullOrEmpty(SmtpPassword) ? "not set" : "set")}, {Workers} worker(s), " +
          $"{(MessagesPerMinute == 0 ? "no rate limit" : MessagesPerMinute + "/min")}";
}
