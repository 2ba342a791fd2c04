namespace CrmEngine.Security.Tests;

public sealed class SeedTests
{
    [Fact]
    public async Task The_shipped_file_seeds_eight_roles_and_the_system_users_and_a_second_run_changes_nothing()
    {
        await using var engine = new TestEngine();
        var first = await engine.SeedShippedAsync();
        Assert.Equal(0, first.Updated);
        // 1 protected-field list + 4 units + 8 roles + 8 users.
        Assert.Equal(21, first.Created);
        var snapshot = await engine.Security.Directory.SnapshotAsync();
        Assert.Equal(Fixture.ShippedRoles.Order(StringComparer.Ordinal), snapshot.Roles.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("org", snapshot.RootUnit);
        Assert.Contains("overdueAmount", snapshot.ProtectedFields["customer"]);
        var lastSequence = await engine.Store().Changes.LastSequenceAsync();

        var second = await engine.SeedShippedAsync();
        Assert.Equal((0, 0, 21), (second.Created, second.Updated, second.Unchanged));
        Assert.Equal(lastSequence, await engine.Store().Changes.LastSequenceAsync());
    }

    [Fact]
    public async Task A_role_changed_in_the_file_is_updated_but_a_user_changed_by_the_cli_is_kept()
    {
        await using var engine = new TestEngine();
        await engine.SeedShippedAsync();
        await engine.Security.AddUserRoleAsync("admin", "auditor", "admin");
        var text = File.ReadAllText(TestEngine.ShippedSeed).Replace("\"customer\": \"create:own read:own write:own assign:own share:own\"",
            "\"customer\": \"create:own read:team write:own assign:own share:own\"", StringComparison.Ordinal);
        var result = await engine.Security.SeedAsync(SeedFile.Parse(text, "edited.json"), "admin");
        Assert.Equal(["updated role salesperson to match the file"], result.Changes);
        var snapshot = await engine.Security.Directory.SnapshotAsync();
        Assert.Equal(AccessDepth.Team, snapshot.Roles["salesperson"].Privileges["customer"]["read"]);
        Assert.Contains("auditor", snapshot.Users["admin"].Roles);
    }

    [Fact]
    public async Task A_bad_file_is_refused_naming_every_place_and_stores_nothing()
    {
        await using var engine = new TestEngine();
        var ex = Assert.Throws<SecurityAdminException>(() => SeedFile.Parse("""
            {
              "units": [ { "id": "org", "name": "Org" } ],
              "roles": [ { "id": "r1", "name": "R", "privileges": { "customer": "read:own reed:all write:far" }, "fields": { "creditLevel": "read" } } ],
              "users": [ { "id": "bad id", "name": "B", "unit": "org", "kind": "robot" } ],
              "groups": []
            }
            """, "bad.json"));
        Assert.Contains("bad.json: 6 problem(s)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("roles[0] (r1).privileges.customer: 'reed:all' is not privilege:depth", ex.Message, StringComparison.Ordinal);
        Assert.Contains("roles[0] (r1).privileges.customer: 'write:far': 'far' is not a depth", ex.Message, StringComparison.Ordinal);
        Assert.Contains("roles[0] (r1).fields.creditLevel: use \"entity.field\"", ex.Message, StringComparison.Ordinal);
        Assert.Contains("users[0] (bad id).kind: 'robot' is not a kind", ex.Message, StringComparison.Ordinal);
        Assert.Contains("users[0] (bad id).id: 'bad id' is not a valid id", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'groups' is not a section", ex.Message, StringComparison.Ordinal);

        var syntax = Assert.Throws<SecurityAdminException>(() => SeedFile.Parse("{\n  \"units\": [\n  }\n", "broken.json"));
        Assert.StartsWith("broken.json: line 3: not valid JSON", syntax.Message, StringComparison.Ordinal);

        // References are checked against the file and the store before anything is written.
        var refs = await Assert.ThrowsAsync<SecurityAdminException>(() => engine.Security.SeedAsync(SeedFile.Parse("""
            { "units": [ { "id": "org", "name": "Org" }, { "id": "a", "name": "A", "parent": "nowhere" } ],
              "users": [ { "id": "ann", "name": "Ann", "unit": "org", "roles": ["ghost"], "manager": "bob" } ] }
            """, "refs.json"), "admin"));
        Assert.Contains("units (a).parent: no unit 'nowhere'", refs.Message, StringComparison.Ordinal);
        Assert.Contains("users (ann).roles: no role 'ghost'", refs.Message, StringComparison.Ordinal);
        Assert.Contains("users (ann).manager: no user 'bob'", refs.Message, StringComparison.Ordinal);
        Assert.Equal(0, await engine.Store().Changes.LastSequenceAsync());
    }
}

public sealed class SeedNameTests
{
    [Fact]
    public void Misspelt_entities_and_fields_are_refused_instead_of_silently_granting_or_protecting_nothing()
    {
        var ex = Assert.Throws<SecurityAdminException>(() => SeedFile.Parse("""
            {
              "protectedFields": { "customer": ["creditLevel", "overdueAmonut"], "custmer": ["x"] },
              "roles": [ { "id": "r", "name": "R",
                           "privileges": { "custmer": "read:own", "sales_opportunity": "read:own", "*": "read:all", "security": "write:all" },
                           "fields": { "customer.creditLevel": "read", "customer.name": "read", "customer.*": "read", "*.*": "read" } } ]
            }
            """, "names.json"));
        Assert.Contains("names.json: 4 problem(s)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("protectedFields.customer: 'overdueAmonut' is not a field of customer", ex.Message, StringComparison.Ordinal);
        Assert.Contains("protectedFields.custmer: not an entity with fields", ex.Message, StringComparison.Ordinal);
        Assert.Contains("roles (r).privileges.custmer: unknown entity", ex.Message, StringComparison.Ordinal);
        Assert.Contains("roles (r).fields.customer.name: not a protected field", ex.Message, StringComparison.Ordinal);
        // The shipped file passes the same checks.
        Assert.Equal(8, SeedFile.Load(TestEngine.ShippedSeed).Roles.Count);
    }
}
