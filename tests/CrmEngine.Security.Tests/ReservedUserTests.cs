using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Security.Tests;

/// <summary>
/// Review finding 9: the engine's writer ids are reserved and write enforcement tells an engine write from a user's by
/// how it was made (the actor's form), never by a user a person can create or by the kind of a user.
/// </summary>
public sealed class ReservedUserTests
{
    [Fact]
    public async Task A_system_kind_user_writing_under_its_own_id_is_checked_by_its_roles_and_the_refusal_is_a_sentence()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        await engine.EnforceWritesAsync();
        var other = await engine.Store("test").Customers.CreateAsync(new Customer { Name = "Other's", Owner = "other" });
        await engine.Security.CreateUserAsync(new SecurityUser
        {
            Id = "etl-bot", Name = "ETL", Kind = UserKind.System, BusinessUnit = "sales", Roles = ["salesperson"],
        }, "admin");

        // Kind system exempts nothing: a salesperson's roles do not reach another unit's customer.
        other.Name = "Taken over by a system-kind user";
        var ex = await Assert.ThrowsAsync<ValidationException>(() => engine.Store("etl-bot").Customers.UpdateAsync(other));
        Assert.Contains("access: denied (customer:write)", ex.Message, StringComparison.Ordinal);
        // "user:<id>" is that user, not an engine writer.
        ex = await Assert.ThrowsAsync<ValidationException>(() => engine.Store("user:u-salesperson").Customers.UpdateAsync(other));
        Assert.Contains("access: denied (customer:write)", ex.Message, StringComparison.Ordinal);
        Assert.Equal("Other's", (await engine.Store().Customers.GetAsync(other.Id))!.Name);

        // A user:<id> store makes the user the owner of what it creates, as a bare id does.
        var created = await engine.Store("user:u-salesperson").Customers.CreateAsync(new Customer { Name = "Mine" });
        Assert.Equal("u-salesperson", created.Owner);

        // The refusal of a protected field ends as a sentence, so "Nothing was stored." can follow it.
        created.CreditLevel = "A";
        ex = await Assert.ThrowsAsync<ValidationException>(() => engine.Store("u-salesperson").Customers.UpdateAsync(created));
        Assert.Contains("may not change customer.creditLevel.", ex.Message, StringComparison.Ordinal);

        // The engine's writers still pass, decided by the actor's form alone.
        foreach (var actor in new[] { "mail", "unsubscribe", "plugin:sales", "rule:welcome", "job:sla", "import:u-salesperson", "system:export" })
        {
            Assert.True(ReservedUsers.IsEngineActor(actor), actor);
            Assert.False(WriteEnforcement.Checks(actor), actor);
        }

        foreach (var actor in new[] { "u-salesperson", "user:u-salesperson", "apikey:erp", "etl-bot", "sys-engine" })
        {
            Assert.True(WriteEnforcement.Checks(actor), actor);
        }
    }

    [Fact]
    public async Task Users_cannot_be_created_seeded_or_turned_into_an_engine_id_and_nothing_is_stored()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        foreach (var (id, kind) in new[] { ("scheduler", UserKind.Person), ("Mail", UserKind.Person), ("unsubscribe", UserKind.System), ("sys-helper", UserKind.System) })
        {
            var ex = await Assert.ThrowsAsync<SecurityAdminException>(() =>
                engine.Security.CreateUserAsync(new SecurityUser { Id = id, Name = "x", Kind = kind, BusinessUnit = "sales", Roles = ["salesperson"] }, "admin"));
            Assert.StartsWith($"user id: '{id}' is reserved", ex.Message, StringComparison.Ordinal);
            Assert.Equal("id", ex.Field);
        }

        // The engine's own system user keeps its kind: it cannot become a person (and so get a key).
        var kindChange = await Assert.ThrowsAsync<SecurityAdminException>(() =>
            engine.Security.UpdateUserAsync(SecurityAdministration.SystemUsers.Engine, new UserChanges(Kind: UserKind.Person), "admin"));
        Assert.Contains("'sys-engine' is reserved for the engine's system user, of kind system", kindChange.Message, StringComparison.Ordinal);
        var seed = Assert.Throws<SecurityAdminException>(() => SeedFile.Parse(
            """{ "users": [ { "id": "anna", "name": "A", "unit": "sales" }, { "id": "mail", "name": "M", "unit": "sales" }, { "id": "sys-api", "name": "P", "kind": "person", "unit": "sales" } ] }""",
            "people.json"));
        Assert.Contains("users[1] (mail).id: 'mail' is reserved", seed.Message, StringComparison.Ordinal);
        Assert.Contains("users[2] (sys-api).id: 'sys-api' is reserved for the engine's system user, of kind integration", seed.Message, StringComparison.Ordinal);

        var snapshot = await engine.Security.Directory.SnapshotAsync();
        Assert.DoesNotContain(snapshot.Users.Keys, k => k is "scheduler" or "Mail" or "unsubscribe" or "sys-helper");
        Assert.Equal(UserKind.System, snapshot.Users[SecurityAdministration.SystemUsers.Engine].Kind);
        // The shipped file (which creates the system users with their kinds) still seeds.
        await engine.SeedShippedAsync();
    }

    [Fact]
    public void Engine_writer_names_and_foreign_sys_ids_are_reserved_the_named_system_users_keep_their_kind()
    {
        foreach (var id in new[] { "mail", "unsubscribe", "scheduler", "Scheduler", "MAIL", "system", "rules" })
        {
            var problem = ReservedUsers.Problem(id, UserKind.Person);
            Assert.NotNull(problem);
            Assert.Contains($"'{id}' is reserved", problem, StringComparison.Ordinal);
        }

        Assert.Contains("ids starting with 'sys-'", ReservedUsers.Problem("sys-helper", UserKind.System), StringComparison.Ordinal);
        Assert.Contains("of kind system", ReservedUsers.Problem("sys-engine", UserKind.Person), StringComparison.Ordinal);
        Assert.Null(ReservedUsers.Problem("sys-engine", UserKind.System));
        Assert.Null(ReservedUsers.Problem("sys-api", UserKind.Integration));
        Assert.Null(ReservedUsers.Problem("anna", UserKind.Person));
        Assert.Null(ReservedUsers.Problem("mailroom", UserKind.Person));

        // Who may act through a key or token: people and integrations, never system users or reserved ids.
        Assert.Contains("is a system user", ReservedUsers.ActingRefusal(new SecurityUser { Id = "etl-bot", Kind = UserKind.System }), StringComparison.Ordinal);
        Assert.Contains("reserved for the engine", ReservedUsers.ActingRefusal(new SecurityUser { Id = "mail", Kind = UserKind.Person }), StringComparison.Ordinal);
        Assert.Null(ReservedUsers.ActingRefusal(new SecurityUser { Id = "sys-api", Kind = UserKind.Integration }));
        Assert.Null(ReservedUsers.ActingRefusal(new SecurityUser { Id = "anna", Kind = UserKind.Person }));
    }

    [Fact]
    public async Task A_store_from_before_the_reservation_keeps_its_mail_user_but_mail_writes_stay_the_engines()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        await engine.EnforceWritesAsync();
        // Written as an older version allowed it (past today's checks): a salesperson called "mail".
        await engine.Security.Directory.For("admin").Users.CreateAsync(new SecurityUser { Id = "mail", Name = "Mail person", BusinessUnit = "sales", Roles = ["salesperson"] });
        engine.Security.Directory.Invalidate();
        var snapshot = await engine.Security.Directory.SnapshotAsync();
        Assert.True(snapshot.Users.ContainsKey("mail"));

        // The user cannot act through the API (ApiIdentity and crm apikeys create ask this), the audit maps "mail" to the
        // mail outbox's system user, not to the person ...
        Assert.Contains("reserved for the engine", ReservedUsers.ActingRefusal(snapshot.Users["mail"]), StringComparison.Ordinal);
        Assert.Equal(SecurityAdministration.SystemUsers.Mail, SecurityAdministration.UserForActor("mail", snapshot));
        // ... and a write as "mail" is the mail outbox's, which is not restricted.
        var other = await engine.Store("test").Customers.CreateAsync(new Customer { Name = "Other's", Owner = "other" });
        other.Tags = ["mailed"];
        Assert.Equal(["mailed"], (await engine.Store("mail").Customers.UpdateAsync(other)).Tags);
    }
}
