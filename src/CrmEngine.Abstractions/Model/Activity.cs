namespace CrmEngine.Abstractions.Model;

public enum ActivityType { Call, Meeting, Visit, Task, Email, Note }

public enum ActivityStatus { Planned, Done, Cancelled }

/// <summary>One entry on a customer's timeline.</summary>
public sealed class Activity : Entity
{
    public string CustomerId { get; set; } = "";
    public ActivityType Type { get; set; } = ActivityType.Note;
    public ActivityStatus Status { get; set; } = ActivityStatus.Planned;
    public string Subject { get; set; } = "";
    public string? Body { get; set; }
    public string? Owner { get; set; }
    public DateTimeOffset? DueAt { get; set; }
    public DateTimeOffset? StartAt { get; set; }
    public DateTimeOffset? EndAt { get; set; }
    public string? Outcome { get; set; }
    /// <summary>Where it came from: a user, a plugin id, a rule name.</summary>
    public string? Source { get; set; }
}
