using System.Globalization;
using System.Text;
using CrmEngine.Abstractions.Mail;
using CrmEngine.Api;
using CrmEngine.Core.Storage;
using CrmEngine.Mail.Outbox;

namespace CrmEngine.Mail;

/// <summary>An answer for the CLI and the control channel: a body, or an error with an HTTP-like status.</summary>
public sealed record MailAnswer(int Status, object? Body, string? Error)
{
    public static MailAnswer Ok(object body) => new(200, body, null);
    public static MailAnswer Problem(int status, string error) => new(status, null, error);
}

/// <summary>Outbox counts for health: messages per state and how long the oldest waiting one has waited.</summary>
public sealed record MailOutboxHealth(IReadOnlyDictionary<string, long> States, double? OldestWaitingSeconds, string Mode);

/// <summary>
/// What operators do with the outbox (<c>crm mail list|show|retry</c>, <c>/api/mail/messages</c>): list by state, show one
/// message with its snapshot, send a failed or retrying message again now. Works on the running engine's store and on a
/// stopped one's (opened by the CLI).
/// </summary>
public sealed class MailAdministration
{
    private readonly OutboxStore _store;
    private readonly MailSignal? _signal;
    private readonly string _mode;

    internal MailAdministration(OutboxStore store, MailSignal? signal, string mode)
    {
        _store = store;
        _signal = signal;
        _mode = mode;
    }

    /// <summary>For the CLI on a stopped engine: the outbox of <paramref name="database"/>.</summary>
    public static MailAdministration Open(CrmDatabase database, MailOptions? options = null) =>
        new(new OutboxStore(database), null, (options ?? new MailOptions()).UsesPickup ? "pickup" : "smtp");

    public MailAnswer List(string? state, int? limit, string? after) =>
        Check(state, limit, out var wanted) ?? MailAnswer.Ok(_store.List(wanted, limit ?? 100, Blank(after)).Select(d => d.ToInfo()).ToList());

    /// <summary>Messages read per API page at most while looking for ones the caller may see (then the page ends early).</summary>
    internal const int ScanBudget = 5000;

    /// <summary>
    /// One page for an API caller: only the messages <paramref name="viewer"/> may see, shaped for them. At most
    /// <see cref="ScanBudget"/> messages are read; <c>Next</c> is the id to continue after (null at the end), so a page may
    /// hold fewer than <paramref name="limit"/> messages and still have a next one.
    /// </summary>
    internal async Task<(MailAnswer Answer, string? Next)> ListAsync(string? state, int? limit, string? after, MailViewer viewer, CancellationToken cancellationToken)
    {
        if (Check(state, limit, out var wanted) is { } problem)
        {
            return (problem, null);
        }

        var take = limit ?? 100;
        var read = _store.List(wanted, viewer.SeesAll ? take : ScanBudget, Blank(after));
        var page = new List<MailMessageInfo>(take);
        string? next = null;
        foreach (var doc in read)
        {
            if (page.Count == take)
            {
                break;
            }

            next = doc.Id;
            if (await viewer.MaySeeAsync(doc, cancellationToken).ConfigureAwait(false))
            {
                page.Add(viewer.Shape(doc.ToInfo()));
            }
        }

        // More may follow when the page is full or the read stopped at its budget.
        var more = page.Count == take || (!viewer.SeesAll && read.Count == ScanBudget);
        return (MailAnswer.Ok(page), more ? next : null);
    }

    /// <summary>Checks the state filter and page size: the problem, or null with the state asked for.</summary>
    private static MailAnswer? Check(string? state, int? limit, out MailState? wanted)
    {
        wanted = null;
        if (!string.IsNullOrWhiteSpace(state))
        {
            if (!Enum.TryParse<MailState>(state, true, out var s) || !Enum.IsDefined(s))
            {
                return MailAnswer.Problem(400, $"unknown state '{state}' (one of {string.Join(", ", Enum.GetNames<MailState>().Select(n => n.ToLowerInvariant()))})");
            }

            wanted = s;
        }

        return limit is < 1 or > 1000 ? MailAnswer.Problem(400, $"limit must be between 1 and 1000 (got {limit})") : null;
    }

    private static string? Blank(string? after) => string.IsNullOrWhiteSpace(after) ? null : after;

    public MailAnswer Show(string id) =>
        _store.Get(id) is { } doc ? MailAnswer.Ok(_store.WithSnapshot(doc).ToInfo(withSnapshot: true)) : NoSuchMessage(id);

    /// <summary>One message for an API caller: 404 (as for an id nobody has) when the caller may not see it, else shaped for them.</summary>
    internal async Task<MailAnswer> ShowAsync(string id, MailViewer viewer, CancellationToken cancellationToken) =>
        _store.Get(id) is { } doc && await viewer.MaySeeAsync(doc, cancellationToken).ConfigureAwait(false)
            ? MailAnswer.Ok(viewer.Shape(_store.WithSnapshot(doc).ToInfo(withSnapshot: true)))
            : NoSuchMessage(id);

    public async Task<MailAnswer> RetryAsync(string id)
    {
        var (problem, doc) = await _store.RetryAsync(id).ConfigureAwait(false);
        if (doc is null)
        {
            return NoSuchMessage(id);
        }

        if (problem is { Length: > 0 })
        {
            return MailAnswer.Problem(409, problem);
        }

        _signal?.Wake();
        return MailAnswer.Ok(doc.ToInfo());
    }

    /// <summary>A retry for an API caller: only of a message the caller may see (else 404); the answer is shaped for them.</summary>
    internal async Task<MailAnswer> RetryAsync(string id, MailViewer viewer, CancellationToken cancellationToken)
    {
        if (_store.Get(id) is not { } doc || !await viewer.MaySeeAsync(doc, cancellationToken).ConfigureAwait(false))
        {
            return NoSuchMessage(id);
        }

        var answer = await RetryAsync(id).ConfigureAwait(false);
        return answer with
        {
            Body = answer.Body is MailMessageInfo info ? viewer.Shape(info) : answer.Body,
            Error = answer.Error is { } error ? viewer.ShapeError(error) : null,
        };
    }

    private static MailAnswer NoSuchMessage(string id) => MailAnswer.Problem(404, $"no message '{id}' in the outbox");

    /// <summary>
    /// For a GDPR erase of <paramref name="customerId"/>: waiting messages become Suppressed and every message of the
    /// customer loses its address, name and model snapshot (ids, template, states and times stay). A message being sent
    /// at this moment is checked again before it goes (the sender reads the card: an erased card is never mailed).
    /// </summary>
    public async Task<MailAnswer> ForgetCustomerAsync(string customerId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(customerId);
        var (suppressed, scrubbed) = await _store.ForgetCustomerAsync(customerId.Trim(), MailOutbox.ErasedReason).ConfigureAwait(false);
        return MailAnswer.Ok(new { customerId, suppressed, scrubbed });
    }

    public MailOutboxHealth Health()
    {
        var counts = _store.CountByState().ToDictionary(p => p.Key.ToString().ToLowerInvariant(), p => p.Value);
        var oldest = _store.OldestWaitingCreated();
        return new MailOutboxHealth(counts, oldest is { } o ? Math.Round(Math.Max(0, _store.NowMs - o) / 1000.0, 1) : null, _mode);
    }

    /// <summary>Table of messages for the CLI.</summary>
    public static string FormatList(IReadOnlyList<MailMessageInfo> rows)
    {
        if (rows.Count == 0)
        {
            return "no messages\n";
        }

        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"ID",-32}  {"STATE",-10}  {"TRIES",5}  {"CREATED (UTC)",-19}  {"TEMPLATE",-20}  {"TO",-30}  NOTE");
        foreach (var m in rows)
        {
            var note = m.State switch
            {
                MailState.Retrying => $"next {m.NextAttemptAt:yyyy-MM-dd HH:mm:ss}: {m.LastError}",
                MailState.Failed or MailState.Suppressed => m.LastError,
                MailState.Pending when m.NextAttemptAt is { } at && at > DateTimeOffset.UtcNow => $"not before {at:yyyy-MM-dd HH:mm:ss}",
                _ => null,
            };
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"{m.Id,-32}  {m.State,-10}  {m.Attempts,5}  {m.CreatedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss}  {Cut(m.Template, 20),-20}  {Cut(m.To, 30),-30}  {note}");
        }

        return sb.ToString();
    }

    /// <summary>One message in full for the CLI.</summary>
    public static string FormatMessage(MailMessageInfo m)
    {
        var sb = new StringBuilder();
        void Line(string name, object? value)
        {
            if (value is not null && value is not "")
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"{name,-16}{value}");
            }
        }

        Line("id", m.Id);
        Line("state", m.State);
        Line("template", m.Template);
        Line("kind", m.Kind + (m.Purpose is null ? "" : $" (purpose {m.Purpose})"));
        Line("to", m.ToName is null ? m.To : $"{m.ToName} <{m.To}>");
        Line("customer", m.CustomerId);
        Line("contact", m.ContactId);
        Line("message-id", $"<{m.MessageId}>");
        Line("key", m.IdempotencyKey);
        Line("origin", m.Origin);
        Line("attempts", m.Attempts);
        Line("created", m.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture));
        Line("last attempt", m.LastAttemptAt?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture));
        Line("next attempt", m.NextAttemptAt?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture));
        Line("sent", m.SentAt?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture));
        Line(m.State == MailState.Suppressed ? "reason" : "last error", m.LastError);
        Line("server reply", m.ServerReply);
        Line("interrupted", m.InterruptedAttempts > 0 ? $"{m.InterruptedAttempts} attempt(s) cut short by a stop or crash (possible duplicate)" : null);
        Line("snapshot", m.Snapshot);
        return sb.ToString();
    }

    private static string Cut(string text, int width) => text.Length <= width ? text : text[..(width - 1)] + "…";
}

/// <summary>The outbox in <c>/health</c>: counts per state and the oldest waiting message's age; no customer data.</summary>
internal sealed class MailHealthContributor(MailAdministration administration, MailOptions options) : IHealthContributor
{
    /// <summary>Mail waiting longer than this makes the outbox "degraded" (SMTP down, rate limit too low, sender off).</summary>
    internal static readonly TimeSpan Stale = TimeSpan.FromMinutes(15);

    public string Name => "mail";

    public Task<HealthReport> CheckAsync(CancellationToken cancellationToken)
    {
        var health = administration.Health();
        var status = !options.Enabled || health.OldestWaitingSeconds > Stale.TotalSeconds ? "degraded" : "ok";
        var details = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["mode"] = health.Mode,
            ["senderEnabled"] = options.Enabled,
            ["oldestWaitingSeconds"] = health.OldestWaitingSeconds,
        };
        foreach (var (state, count) in health.States)
        {
            details[state] = count;
        }

        return Task.FromResult(new HealthReport(status, details));
    }
}
