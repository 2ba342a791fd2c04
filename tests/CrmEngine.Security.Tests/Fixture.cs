namespace CrmEngine.Security.Tests;

/// <summary>
/// A unit tree and users placed so that every depth reaches a different set of records, seeded over the shipped file.
/// org ─┬─ sales ─┬─ sales-north        The user under test ("u-&lt;role&gt;") is in sales and in team t-sales (unit sales).
///      │         └─ sales-south        mate: in t-sales but in unit service; same: sales; child: sales-north;
///      ├─ service                      other: marketing; nobody: no owner (the root unit).
///      └─ marketing
/// </summary>
internal static class Fixture
{
    public static readonly string[] ShippedRoles =
        ["administrator", "sales-manager", "salesperson", "service-manager", "service-agent", "marketing", "auditor", "integration"];

    /// <summary>Record positions relative to the user under test, in the order of <see cref="Reach"/>.</summary>
    public static readonly string[] Positions = ["own", "team-owned", "teammate", "same-unit", "child-unit", "other-branch", "unowned"];

    public static string? OwnerAt(string position, string user) => position switch
    {
        "own" => user,
        "team-owned" => "team:t-sales",
        "teammate" => "mate",
        "same-unit" => "same",
        "child-unit" => "child",
        "other-branch" => "other",
        "unowned" => null,
        _ => throw new ArgumentOutOfRangeException(nameof(position)),
    };

    /// <summary>Which positions each depth reaches, written out by hand (not computed by the code under test).</summary>
    public static readonly Dictionary<char, string[]> Reach = new()
    {
        ['-'] = [],
        ['o'] = ["own", "team-owned"],
        ['t'] = ["own", "team-owned", "teammate"],
        ['u'] = ["own", "team-owned", "teammate", "same-unit"],
        ['b'] = ["own", "team-owned", "teammate", "same-unit", "child-unit"],
        ['a'] = ["own", "team-owned", "teammate", "same-unit", "child-unit", "other-branch", "unowned"],
    };

    public const string Json = """
    {
      "units": [
        { "id": "sales-north", "name": "Sales north", "parent": "sales" },
        { "id": "sales-south", "name": "Sales south", "parent": "sales" }
      ],
      "teams": [ { "id": "t-sales", "name": "Sales team", "unit": "sales" } ],
      "users": [
        { "id": "u-administrator", "name": "U", "unit": "sales", "teams": ["t-sales"], "roles": ["administrator"] },
        { "id": "u-sales-manager", "name": "U", "unit": "sales", "teams": ["t-sales"], "roles": ["sales-manager"] },
        { "id": "u-salesperson", "name": "U", "unit": "sales", "teams": ["t-sales"], "roles": ["salesperson"] },
        { "id": "u-service-manager", "name": "U", "unit": "sales", "teams": ["t-sales"], "roles": ["service-manager"] },
        { "id": "u-service-agent", "name": "U", "unit": "sales", "teams": ["t-sales"], "roles": ["service-agent"] },
        { "id": "u-marketing", "name": "U", "unit": "sales", "teams": ["t-sales"], "roles": ["marketing"] },
        { "id": "u-auditor", "name": "U", "unit": "sales", "teams": ["t-sales"], "roles": ["auditor"] },
        { "id": "u-integration", "name": "U", "unit": "sales", "teams": ["t-sales"], "roles": ["integration"] },
        { "id": "mate", "name": "Mate", "unit": "service", "teams": ["t-sales"] },
        { "id": "same", "name": "Same", "unit": "sales" },
        { "id": "child", "name": "Child", "unit": "sales-north" },
        { "id": "other", "name": "Other", "unit": "marketing" }
      ]
    }
    """;

    public static async Task SeedAsync(TestEngine engine)
    {
        await engine.SeedShippedAsync();
        await engine.Security.SeedAsync(SeedFile.Parse(Json, "fixture.json"), "admin");
    }
}
