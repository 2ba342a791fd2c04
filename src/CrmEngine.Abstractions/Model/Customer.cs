namespace CrmEngine.Abstractions.Model;

public enum CustomerKind { Organisation, Person }

/// <summary>Existing (has bought) versus potential (not yet) customer.</summary>
public enum CustomerStatus { Potential, Existing }

/// <summary>Lifecycle stages from the customer card: stranger to loyal, and the dormant/lost ends.</summary>
public enum LifecycleStage
{
    Stranger,
    Prospect,
    DormantProspect,
    LostProspect,
    NewCustomer,
    RepeatCustomer,
    LoyalCustomer,
    Dormant,
    Lost,
}

/// <summary>The customer card: one organisation or person, with its contact persons.</summary>
public sealed class Customer : Entity
{
    public CustomerKind Kind { get; set; } = CustomerKind.Organisation;
    public CustomerStatus Status { get; set; } = CustomerStatus.Potential;
    public LifecycleStage Stage { get; set; } = LifecycleStage.Prospect;

    /// <summary>Display name: organisation name or the person's full name.</summary>
    public string Name { get; set; } = "";

    /// <summary>Owning sales rep (user id). Transfer keeps the history: only this field changes.</summary>
    public string? Owner { get; set; }

    /// <summary>Ids in other systems (ERP, web shop, EDI partner), keyed by system name.</summary>
    public Dictionary<string, string> ExternalIds { get; set; } = new(StringComparer.Ordinal);

    public List<string> Emails { get; set; } = [];
    public List<string> Phones { get; set; } = [];
    public List<Address> Addresses { get; set; } = [];
    public List<ContactPerson> Contacts { get; set; } = [];
    public List<string> Tags { get; set; } = [];

    /// <summary>Credit level that drives transaction limits (for example A, B, C or a number as text).</summary>
    public string? CreditLevel { get; set; }

    /// <summary>Largest open amount allowed for this customer, in <see cref="Currency"/>.</summary>
    public decimal? CreditLimit { get; set; }

    /// <summary>Defaulters are blacklisted; the reason is kept beside the flag.</summary>
    public bool Blacklisted { get; set; }
    public string? BlacklistReason { get; set; }

    /// <summary>Payment / collection terms, for example "30 days net".</summary>
    public string? PaymentTerms { get; set; }
    public decimal OverdueAmount { get; set; }
    public string? Currency { get; set; }

    /// <summary>Trading habits and sales status in words, as the rep keeps them.</summary>
    public string? TradingHabits { get; set; }
    public string? SalesStatus { get; set; }

    /// <summary>How often the rep should visit, in days; null when there is no plan.</summary>
    public int? VisitIntervalDays { get; set; }
    public DateTimeOffset? NextVisitAt { get; set; }

    public CustomerProfile Profile { get; set; } = new();

    /// <summary>Typed custom fields, keyed by field name.</summary>
    public Dictionary<string, CustomValue> Custom { get; set; } = new(StringComparer.Ordinal);

    /// <summary>When a person last confirmed the card was current; old values flag stale data.</summary>
    public DateTimeOffset? VerifiedAt { get; set; }
}

public enum AddressKind { Mailing, Billing, Shipping, Visiting }

public sealed class Address
{
    public AddressKind Kind { get; set; } = AddressKind.Mailing;
    public string? Line1 { get; set; }
    public string? Line2 { get; set; }
    public string? PostalCode { get; set; }
    public string? City { get; set; }
    public string? Region { get; set; }
    /// <summary>ISO 3166-1 alpha-2 country code.</summary>
    public string? Country { get; set; }
}

/// <summary>A person at an organisation customer (or the person themself).</summary>
public sealed class ContactPerson
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public string? Role { get; set; }
    public string? Email { get; set; }
    public string? Phone { get; set; }
    public DateOnly? Birthday { get; set; }
    public bool Primary { get; set; }
}

/// <summary>Profile attributes used for segmentation.</summary>
public sealed class CustomerProfile
{
    public string? Region { get; set; }
    public string? Gender { get; set; }
    public string? AgeBand { get; set; }
    public string? IncomeBand { get; set; }
    public string? Occupation { get; set; }
    public string? Family { get; set; }
    public string? InformationSource { get; set; }
    public DateOnly? Birthday { get; set; }
    public List<string> Interests { get; set; } = [];
}

public enum CustomValueType { Text, Number, Date, Boolean }

/// <summary>A typed custom field value: exactly the member matching <see cref="Type"/> is set.</summary>
public sealed class CustomValue
{
    public CustomValueType Type { get; set; }
    public string? Text { get; set; }
    public decimal? Number { get; set; }
    public DateTimeOffset? Date { get; set; }
    public bool? Boolean { get; set; }

    public static CustomValue Of(string text) => new() { Type = CustomValueType.Text, Text = text };
    public static CustomValue Of(decimal number) => new() { Type = CustomValueType.Number, Number = number };
    public static CustomValue Of(DateTimeOffset date) => new() { Type = CustomValueType.Date, Date = date };
    public static CustomValue Of(bool value) => new() { Type = CustomValueType.Boolean, Boolean = value };

    /// <summary>True when exactly the member for <see cref="Type"/> holds a value.</summary>
    public bool IsConsistent() => Type switch
    {
        CustomValueType.Text => Text is not null && Number is null && Date is null && Boolean is null,
        CustomValueType.Number => Number is not null && Text is null && Date is null && Boolean is null,
        CustomValueType.Date => Date is not null && Text is null && Number is null && Boolean is null,
        CustomValueType.Boolean => Boolean is not null && Text is null && Number is null && Date is null,
        _ => false,
    };

    public override string ToString() => Type switch
    {
        CustomValueType.Text => Text ?? "",
        CustomValueType.Number => Number?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "",
        CustomValueType.Date => Date?.ToString("O", System.Globalization.CultureInfo.InvariantCulture) ?? "",
        CustomValueType.Boolean => Boolean == true ? "true" : "false",
        _ => "",
    };
}
