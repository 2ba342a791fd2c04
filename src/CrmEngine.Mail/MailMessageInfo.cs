using CrmEngine.Abstractions.Mail;

namespace CrmEngine.Mail;

/// <summary>One outbox message as the CLI, the API and plugins' admins see it.</summary>
public sealed record MailMessageInfo
{
    public required string Id { get; init; }
    public required string IdempotencyKey { get; init; }
    public required string Template { get; init; }
    public MailKind Kind { get; init; }
    public string? Purpose { get; init; }
    public string? CustomerId { get; init; }
    public string? ContactId { get; init; }
    public required string To { get; init; }
    public string? ToName { get; init; }
    public required string Culture { get; init; }
    public required string MessageId { get; init; }
    public MailState State { get; init; }
    public int Attempts { get; init; }
    public DateTimeOffset? NextAttemptAt { get; init; }
    public string? LastError { get; init; }
    public string? ServerReply { get; init; }
    public required string Origin { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? LastAttemptAt { get; init; }
    public DateTimeOffset? SentAt { get; init; }
    /// <summary>Attempts cut short by a stop or crash while sending; each may have been a duplicate delivery.</summary>
    public int InterruptedAttempts { get; init; }
    /// <summary>The model snapshot (JSON), only in <c>show</c>.</summary>
    public string? Snapshot { get; init; }
}
