using System.Globalization;

namespace CrmEngine.Edi;

public enum EdiDocumentType
{
    PurchaseOrder,
    OrderResponse,
    ShipNotice,
    Invoice,
}

/// <summary>A party (N1 loop / NAD). Codes stay those of the standard (X12 BY/ST/SE, EDIFACT BY/SU/DP).</summary>
public sealed record EdiParty
{
    public string Role { get; init; } = "";

    public string Id { get; init; } = "";

    /// <summary>X12 N103 identification code qualifier / EDIFACT 3055 code list agency.</summary>
    public string IdQualifier { get; init; } = "";

    public string Name { get; init; } = "";

    public string Street { get; init; } = "";

    public string Street2 { get; init; } = "";

    public string City { get; init; } = "";

    public string Region { get; init; } = "";

    public string PostalCode { get; init; } = "";

    public string Country { get; init; } = "";
}

public sealed record EdiReference(string Qualifier, string Value);

/// <summary>A qualified date: X12 DTM (CCYYMMDD) or EDIFACT DTM (value with format code, 102 = CCYYMMDD).</summary>
public sealed record EdiDate(string Qualifier, string Value, string Format = "102");

public sealed record EdiItemId(string Qualifier, string Value);

public sealed class EdiLine
{
    public string LineNumber { get; set; } = "";

    public List<EdiItemId> ItemIds { get; } = [];

    public decimal? Quantity { get; set; }

    public string Unit { get; set; } = "";

    public decimal? UnitPrice { get; set; }

    public string Description { get; set; } = "";

    /// <summary>Line status: X12 ACK01 (855) / EDIFACT LIN 1229 action code (ORDRSP).</summary>
    public string Status { get; set; } = "";
}

/// <summary>The typed business document built from a transaction set and written back by <see cref="EdiDocuments"/>.</summary>
public sealed class EdiBusinessDocument
{
    public EdiDocumentType Type { get; set; }

    public EdiStandard Standard { get; set; }

    /// <summary>004010 / 005010 / D96A / D01B.</summary>
    public string Version { get; set; } = "";

    /// <summary>PO number, acknowledgement/response number, shipment id or invoice number.</summary>
    public string Number { get; set; } = "";

    /// <summary>The purchase order referred to (855 BAK03, 856 PRF01, 810 BIG04, EDIFACT RFF+ON).</summary>
    public string OrderNumber { get; set; } = "";

    /// <summary>Purpose / message function (BEG01, BAK01, BSN01, BGM 1225).</summary>
    public string Purpose { get; set; } = "";

    /// <summary>Order type (BEG02) or acknowledgement type (BAK02).</summary>
    public string Status { get; set; } = "";

    /// <summary>Document date CCYYMMDD.</summary>
    public string Date { get; set; } = "";

    /// <summary>856 BSN04 time HHMM.</summary>
    public string Time { get; set; } = "";

    public string Currency { get; set; } = "";

    public List<EdiParty> Parties { get; } = [];

    public List<EdiReference> References { get; } = [];

    public List<EdiDate> Dates { get; } = [];

    public List<EdiLine> Lines { get; } = [];

    public decimal? TotalAmount { get; set; }

    public int? LineCount { get; set; }

    public string SetId => Standard == EdiStandard.X12
        ? Type switch { EdiDocumentType.PurchaseOrder => "850", EdiDocumentType.OrderResponse => "855", EdiDocumentType.ShipNotice => "856", _ => "810" }
        : Type switch { EdiDocumentType.PurchaseOrder => "ORDERS", EdiDocumentType.OrderResponse => "ORDRSP", EdiDocumentType.ShipNotice => "DESADV", _ => "INVOIC" };

    public string FunctionalId => Type switch { EdiDocumentType.PurchaseOrder => "PO", EdiDocumentType.OrderResponse => "PR", EdiDocumentType.ShipNotice => "SH", _ => "IN" };
}
