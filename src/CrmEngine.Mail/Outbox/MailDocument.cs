using CrmEngine.Abstractions.Mail;
using LiteDB;

namespace CrmEngine.Mail.Outbox;

/// <summary>
/// One message as stored in <c>_mail</c>. Instants are unix milliseconds (Int64) so the due index is exact. The model
/// snapshot is JSON text taken at enqueue: the message shows what was true when it was triggered.
/// </summary>
internal sealed class MailDocument
{
    public string Id { get; set; } = "";
    /// <summary>Idempotency key (unique index).</summary>
    public string Key { get; set; } = "";
    public string Template { get; set; } = "";
    public MailKind Kind { get; set; }
    public string? Purpose { get; set; }
    public string? CustomerId { get; set; }
    public string? ContactId { get; set; }
    public string To { get; set; } = "";
    public string? ToName { get; set; }
    public string Culture { get; set; } = "en-US";
    /// <summary>
    /// {"customer":…,"contact":…,"order":…,"extra":{…}} as JSON. Stored apart in <c>_mail_snapshots</c> (written once),
    /// so that the state changes of a message (claim, outcome) rewrite a small document: LiteDB syncs its journal once
    /// per page written, and the snapshot is most of a message's bytes.
    /// </summary>
    public string Snapshot { get; set; } = "{}";

    /// <summary>A message stored before snapshots moved out of the message document keeps it inline.</summary>
    public bool InlineSnapshot { get; set; }
    /// <summary>Without angle brackets, for example <c>0193…@example.com</c>; the same on every attempt.</summary>
    public string MessageId { get; set; } = "";
    public MailState State { get; set; }
    public int Attempts { get; set; }
    /// <summary>Pending/Retrying: when it may be sent; otherwise null (indexed: the only way due messages are found).</summary>
    public long? Due { get; set; }
    /// <summary>Why it was suppressed, or the last error / server reply.</summary>
    public string? LastError { get; set; }
    /// <summary>The server's reply to the accepted message (or the pickup file written).</summary>
    public string? ServerReply { get; set; }
    /// <summary>Who enqueued it: <c>core</c>, <c>plugin:&lt;id&gt;</c>, <c>rule:&lt;name&gt;</c>, <c>admin</c>.</summary>
    public string Origin { get; set; } = "core";
    public long Created { get; set; }
    public long Updated { get; set; }
    public long? LastAttempt { get; set; }
    public long? Sent { get; set; }
    /// <summary>Attempts that were cut short by a stop or crash while in Sending (the documented duplicate window).</summary>
    public int Interrupted { get; set; }

    public BsonDocument ToBson()
    {
        var d = new BsonDocument
        {
            ["_id"] = Id,
            ["key"] = Key,
            ["template"] = Template,
            ["kind"] = Kind.ToString(),
            ["to"] = To,
            ["culture"] = Culture,
            ["messageId"] = MessageId,
            ["state"] = State.ToString(),
            ["attempts"] = Attempts,
            ["origin"] = Origin,
            ["created"] = Created,
            ["updated"] = Updated,
            ["interrupted"] = Interrupted,
        };
        if (InlineSnapshot)
        {
            d["snapshot"] = Snapshot;
        }

        Put(d, "purpose", Purpose);
        Put(d, "customer", CustomerId);
        Put(d, "contact", ContactId);
        Put(d, "toName", ToName);
        Put(d, "error", LastError);
        Put(d, "reply", ServerReply);
        if (Due is { } due && State is MailState.Pending or MailState.Retrying)
        {
            d["due"] = due;
        }

        if (LastAttempt is { } last)
        {
            d["lastAttempt"] = last;
        }

        if (Sent is { } sent)
        {
            d["sent"] = sent;
        }

        return d;
    }

    public static MailDocument FromBson(BsonDocument d) => new()
    {
        Id = d["_id"].AsString,
        Key = d["key"].AsString,
        Template = d["template"].AsString,
        Kind = Enum.Parse<MailKind>(d["kind"].AsString),
        Purpose = Str(d, "purpose"),
        CustomerId = Str(d, "customer"),
        ContactId = Str(d, "contact"),
        To = d["to"].AsString,
        ToName = Str(d, "toName"),
        Culture = d["culture"].AsString,
        Snapshot = Str(d, "snapshot") ?? "{}",
        InlineSnapshot = d.ContainsKey("snapshot"),
        MessageId = d["messageId"].AsString,
        State = Enum.Parse<MailState>(d["state"].AsString),
        Attempts = d["attempts"].AsInt32,
        Due = Long(d, "due"),
        LastError = Str(d, "error"),
        ServerReply = Str(d, "reply"),
        Origin = Str(d, "origin") ?? "core",
        Created = d["created"].AsInt64,
        Updated = d["updated"].AsInt64,
        LastAttempt = Long(d, "lastAttempt"),
        Sent = Long(d, "sent"),
        Interrupted = d.TryGetValue("interrupted", out var i) && i.IsNumber ? i.AsInt32 : 0,
    };

    public MailMessageInfo ToInfo(bool withSnapshot = false) => new()
    {
        Id = Id,
        IdempotencyKey = Key,
        Template = Template,
        Kind = Kind,
        Purpose = Purpose,
        CustomerId = CustomerId,
        ContactId = ContactId,
        To = To,
        ToName = ToName,
        Culture = Culture,
        MessageId = MessageId,
        State = State,
        Attempts = Attempts,
        NextAttemptAt = State is MailState.Pending or MailState.Retrying && Due is { } due ? DateTimeOffset.FromUnixTimeMilliseconds(due) : null,
        LastError = MailOutbox.WithoutBlacklistReason(LastError),
        ServerReply = ServerReply,
        Origin = Origin,
        CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(Created),
        UpdatedAt = DateTimeOffset.FromUnixTimeMilliseconds(Updated),
        LastAttemptAt = LastAttempt is { } l ? DateTimeOffset.FromUnixTimeMilliseconds(l) : null,
        SentAt = Sent is { } s ? DateTimeOffset.FromUnixTimeMilliseconds(s) : null,
        InterruptedAttempts = Interrupted,
        Snapshot = withSnapshot ? Snapshot : null,
    };

    private static void Put(BsonDocument d, string name, string? value)
    {
        if (value is not null)
        {
            d[name] = value;
        }
    }

    private static string? Str(BsonDocument d, string name) => d.TryGetValue(name, out var v) && v.IsString ? v.AsString : null;

    private static long? Long(BsonDocument d, string name) => d.TryGetValue(name, out var v) && v.IsNumber ? v.AsInt64 : null;
}
