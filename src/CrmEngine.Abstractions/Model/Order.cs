namespace CrmEngine.Abstractions.Model;

public enum OrderStatus { Draft, Confirmed, Shipped, Invoiced, Paid, Cancelled }

public sealed class Order : Entity
{
    public string CustomerId { get; set; } = "";
    public string? Number { get; set; }
    public OrderStatus Status { get; set; } = OrderStatus.Draft;
    public string Currency { get; set; } = "EUR";
    public DateTimeOffset OrderedAt { get; set; }
    public List<OrderLine> Lines { get; set; } = [];
    /// <summary>References in other systems (ERP order number, EDI PO number), keyed by system.</summary>
    public Dictionary<string, string> ExternalIds { get; set; } = new(StringComparer.Ordinal);
    public string? Owner { get; set; }

    /// <summary>Sum of the line amounts.</summary>
    public decimal Total => Lines.Sum(l => l.Amount);
}

public sealed class OrderLine
{
    public string? ProductId { get; set; }
    public string? Sku { get; set; }
    public string Description { get; set; } = "";
    public decimal Quantity { get; set; }
    public string? Unit { get; set; }
    public decimal UnitPrice { get; set; }
    public decimal Amount => Quantity * UnitPrice;
}

public sealed class Product : Entity
{
    public string Sku { get; set; } = "";
    public string Name { get; set; } = "";
    public string? Description { get; set; }
    public decimal? ListPrice { get; set; }
    public string Currency { get; set; } = "EUR";
    public string? Unit { get; set; }
    public bool Active { get; set; } = true;
    public Dictionary<string, string> ExternalIds { get; set; } = new(StringComparer.Ordinal);
}
