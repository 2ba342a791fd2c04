namespace CrmEngine.Abstractions.Mail;

/// <summary>Transactional mail answers something the customer did; marketing mail needs consent for its purpose.</summary>
public enum MailKind
{
    Transactional,
    Marketing,
}

/// <summary>A message to send: a template rendered for one recipient. Enqueued into the durable outbox.</summary>
public sealed class MailRequest
{
    /// <summary>Template name in <c>templates/</c>, for example <c>welcome</c> or <c>order-confirmation</c>.</summary>
    public required string Template { get; init; }

    /// <summary>The customer the message is about and to; the model's <c>customer</c>.</summary>
    public string? CustomerId { get; init; }

    /// <summary>Recipient address; when null, the customer's (or contact's) first e-mail address.</summary>
    public string? To { get; init; }

    public string? ToName { get; init; }

    /// <summary>A contact person of the customer, by id; the model's <c>contact</c> and, when <see cref="To"/> is null, the recipient.</summary>
    public string? ContactId { get; init; }

    public MailKind Kind { get; init; } = MailKind.Transactional;

    /// <summary>The consent purpose a marketing message needs (for example <c>newsletter</c>); required for marketing.</summary>
    public string? Purpose { get; init; }

    /// <summary>
    /// Further model values by name (for example <c>order</c>, <c>case</c>, <c>campaign</c>); snapshotted as JSON when
    /// enqueued, so the message shows what was true when it was triggered.
    /// </summary>
    public IReadOnlyDictionary<string, object?> Model { get; init; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>One per trigger (for example <c>order-confirmation:{orderId}</c>): the same key enqueued twice sends once.</summary>
    public required string IdempotencyKey { get; init; }

    /// <summary>Culture for money and date formatting (for example <c>de-DE</c>); defaults to the engine's.</summary>
    public string? Culture { get; init; }

    /// <summary>Not sent before this time (scheduled sends).</summary>
    public DateTimeOffset? NotBefore { get; init; }
}

public enum MailState
{
    /// <summary>Waiting to be sent (or for <see cref="MailRequest.NotBefore"/>).</summary>
    Pending,
    /// <summary>Handed to a sender worker.</summary>
    Sending,
    /// <summary>A transient failure (4xx, connection); tried again after a backoff.</summary>
    Retrying,
    Sent,
    /// <summary>A permanent failure (5xx or the last retry); the server's reply is recorded.</summary>
    Failed,
    /// <summary>Not sent: no consent for the purpose, no address, blacklisted; the reason is recorded.</summary>
    Suppressed,
}

/// <summary>The outcome of an enqueue: the message's id and state; <see cref="Duplicate"/> when the key was seen before.</summary>
public sealed record MailEnqueueResult(string MessageId, MailState State, bool Duplicate, string? Reason);

/// <summary>The engine's mail outbox, for plugins and rules. Sending is enqueueing; a background sender delivers.</summary>
public interface IMailOutbox
{
    Task<MailEnqueueResult> EnqueueAsync(MailRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Many messages at once (a campaign run), results in the same order. The engine's outbox checks every request
    /// first (a bad one refuses the call, naming its position, and nothing is stored) and stores them in large
    /// transactions, far faster than one <see cref="EnqueueAsync"/> per message.
    /// </summary>
    async Task<IReadOnlyList<MailEnqueueResult>> EnqueueManyAsync(IReadOnlyList<MailRequest> requests, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        var results = new List<MailEnqueueResult>(requests.Count);
        foreach (var request in requests)
        {
            results.Add(await EnqueueAsync(request, cancellationToken).ConfigureAwait(false));
        }

        return results;
    }
}
