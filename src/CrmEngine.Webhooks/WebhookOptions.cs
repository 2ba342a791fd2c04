using System.ComponentModel.DataAnnotations;

namespace CrmEngine.Webhooks;

/// <summary>Section <c>Webhooks</c>: how outbound deliveries are sent and retried.</summary>
public sealed class WebhookOptions : IValidatableObject
{
    public const string Section = "Webhooks";

    /// <summary>Tries of one delivery (the first send included) before it is parked with its last error.</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 8;

    /// <summary>Wait before the second try; doubles per try up to <see cref="RetryMaxDelay"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "1.00:00:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest wait between two tries.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "7.00:00:00")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Budget of one POST (connect, send, response headers); past it the try counts as failed.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the dispatcher looks for new changes when nothing woke it.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Subscriptions sent to at the same time (each subscription itself gets one delivery at a time).</summary>
    [Range(1, 256)]
    public int MaxConcurrentSubscriptions { get; set; } = 8;

    /// <summary>
    /// False (default): subscriptions may not point at loopback, private, link-local or other non-public addresses, and a
    /// delivery whose host resolves only to such addresses is refused and parked (SSRF protection). True for receivers
    /// inside your own network (and tests with a loopback listener).
    /// </summary>
    public bool AllowPrivateTargets { get; set; }

    /// <summary>
    /// Receivers allowed even when private (with <see cref="AllowPrivateTargets"/> false): exact host names
    /// (<c>erp.internal.example</c>, compared ignoring case) and address ranges in CIDR notation (<c>10.20.0.0/16</c>,
    /// <c>fd00:1::/64</c>; a single address is <c>/32</c> or <c>/128</c>, or written without a prefix). A name allows the
    /// addresses it resolves to; a range allows URLs with an address in it and names that resolve into it.
    /// </summary>
    public List<string> AllowedHosts { get; set; } = [];

    /// <summary>How long delivered deliveries stay in the history before they are removed.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan DeliveredRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>
    /// Every bad <see cref="AllowedHosts"/> entry, keyed by its place (<c>AllowedHosts:1</c>): the start-time validation and
    /// <c>crm config check</c> (both read data annotations) name the key, and the checker its value.
    /// </summary>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext) =>
        TargetPolicy.Problems(AllowedHosts).Select(p => new ValidationResult(p.Problem, [p.Key]));
}
