namespace CrmEngine.Abstractions.Model;

public enum ConsentChannel { Email, Phone, Sms, Post, Any }

/// <summary>One consent decision per purpose and channel. A later entry supersedes an earlier one.</summary>
public sealed class ConsentEntry : Entity
{
    public string CustomerId { get; set; } = "";
    /// <summary>What the consent is for, for example "newsletter" or "offers".</summary>
    public string Purpose { get; set; } = "";
    public ConsentChannel Channel { get; set; } = ConsentChannel.Email;
    public bool Granted { get; set; }
    /// <summary>Where it was given or withdrawn: web form, unsubscribe link, phone call, import.</summary>
    public string Source { get; set; } = "";
    public DateTimeOffset At { get; set; }
}
