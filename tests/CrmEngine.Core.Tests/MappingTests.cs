using CrmEngine.Core.Storage;
using CrmEngine.Abstractions.Model;

namespace CrmEngine.Core.Tests;

public class MappingTests
{
    [Fact]
    public async Task A_fully_populated_customer_round_trips_exactly()
    {
        using var engine = new TestEngine();
        var input = new Customer
        {
            Kind = CustomerKind.Person,
            Status = CustomerStatus.Existing,
            Stage = LifecycleStage.LoyalCustomer,
            Name = "张伟 (Zhang Wei)",
            Owner = "rep:李娜",
            ExternalIds = { ["erp"] = "C1002", ["shop"] = "客户-7" },
            Emails = ["zhang.wei@example.cn", "ZW@Example.com"],
            Phones = ["+86 10 1234 5678"],
            Addresses =
            [
                new Address { Kind = AddressKind.Billing, Line1 = "朝阳区建国路 88 号", City = "北京", PostalCode = "100022", Country = "CN" },
                new Address { Kind = AddressKind.Shipping, Line1 = "  leading and trailing  ", Line2 = "", Country = "DE" },
            ],
            Contacts =
            [
                new ContactPerson { Id = "c1", Name = "王芳", Role = "采购", Email = "wang@example.cn", Phone = "138 0000 0000", Birthday = new DateOnly(1985, 2, 28), Primary = true },
            ],
            Tags = ["vip", "华北"],
            CreditLevel = "A",
            CreditLimit = 12345.6789m,
            Blacklisted = true,
            BlacklistReason = "拖欠货款",
            PaymentTerms = "30 天",
            OverdueAmount = 0.01m,
            Currency = "CNY",
            TradingHabits = "季度采购",
            SalesStatus = "谈判中",
            VisitIntervalDays = 30,
            NextVisitAt = new DateTimeOffset(2026, 12, 1, 9, 30, 15, 123, TimeSpan.FromHours(8)).AddTicks(4567),
            Profile = new CustomerProfile
            {
                Region = "华北", Gender = "m", AgeBand = "30-39", IncomeBand = "high", Occupation = "工程师", Family = "married",
                InformationSource = "展会", Birthday = new DateOnly(1990, 12, 31), Interests = ["茶", "golf"],
            },
            Custom =
            {
                ["积分"] = CustomValue.Of(1234.5m),
                ["note"] = CustomValue.Of("备注"),
                ["since"] = CustomValue.Of(new DateTimeOffset(2020, 1, 2, 3, 4, 5, TimeSpan.FromHours(-5))),
                ["active"] = CustomValue.Of(true),
            },
            VerifiedAt = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero),
        };

        var created = await engine.Store.Customers.CreateAsync(input);
        var read = await engine.Store.Customers.GetAsync(created.Id);

        Assert.NotNull(read);
        Assert.Equal(1, read.Version);
        Assert.Equal(created.CreatedAt, read.CreatedAt);
        Assert.Equal(created.CreatedAt.Offset, read.CreatedAt.Offset);
        var expected = System.Text.Json.JsonSerializer.Serialize(created);
        var actual = System.Text.Json.JsonSerializer.Serialize(read);
        Assert.Equal(expected, actual);
        Assert.Equal("张伟 (Zhang Wei)", read.Name);
        Assert.Equal("  leading and trailing  ", read.Addresses[1].Line1);
        Assert.Equal("", read.Addresses[1].Line2);
        Assert.Equal(new DateOnly(1985, 2, 28), read.Contacts[0].Birthday);
        Assert.Equal(12345.6789m, read.CreditLimit);
        Assert.Equal(input.NextVisitAt, read.NextVisitAt);
        Assert.Equal(TimeSpan.FromHours(8), read.NextVisitAt!.Value.Offset);
        Assert.Equal(CustomValueType.Number, read.Custom["积分"].Type);
        Assert.Equal(1234.5m, read.Custom["积分"].Number);
        Assert.True(read.Custom["since"].IsConsistent());
        Assert.Equal(LifecycleStage.LoyalCustomer, read.Stage);
        // The caller's object is not changed by the store.
        Assert.Equal("", input.Id);
    }

    [Fact]
    public async Task Orders_and_products_round_trip_with_decimals_and_lines()
    {
        using var engine = new TestEngine();
        var customer = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());
        var product = await engine.Store.Products.CreateAsync(new Product { Sku = "SKU-1", Name = "Widget", ListPrice = 9.99m });
        var order = await engine.Store.Orders.CreateAsync(new Order
        {
            CustomerId = customer.Id,
            Currency = "EUR",
            OrderedAt = DateTimeOffset.UnixEpoch,
            Lines = [new OrderLine { ProductId = product.Id, Sku = "SKU-1", Description = "Widget", Quantity = 3, UnitPrice = 0.1m }],
            ExternalIds = { ["edi"] = "PO-9" },
        });

        var read = await engine.Store.Orders.GetAsync(order.Id);
        Assert.NotNull(read);
        Assert.Equal(0.3m, read.Total);
        Assert.Equal(DateTimeOffset.UnixEpoch, read.OrderedAt);
        Assert.Equal("PO-9", read.ExternalIds["edi"]);
    }

    [Fact]
    public async Task Acknowledged_commits_are_fsynced_after_the_disk_writer_emptied_its_queue()
    {
        // LiteDB 5 writes the journal from a background queue and signals "empty" before it syncs the
        // file; the engine waits for that queue (found by reflection on LiteDB 5.0.x internals: this
        // fails if an upgrade changes them) and then fsyncs the journal itself before it acknowledges.
        using var engine = new TestEngine();
        var log = CrmDatabase.LogFileOf(engine.Database.FilePath);
        var synced = new List<(string File, long Length)>();
        engine.Database.Flush.Synced = file => synced.Add((file, new FileInfo(file).Length));

        var created = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Durable GmbH"));

        var sync = Assert.Single(synced, s => s.File == log);
        Assert.True(sync.Length > 0, "the journal holds the commit when it is synced");
        var before = synced.Count;
        created.Name = "Durable AG";
        await engine.Store.Customers.UpdateAsync(created);
        Assert.True(synced.Count > before, "every acknowledged commit is synced");
    }

    [Fact]
    public async Task Ids_are_generated_and_sort_by_creation_time()
    {
        using var engine = new TestEngine();
        var ids = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            ids.Add((await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer($"C{i}"))).Id);
        }

        Assert.All(ids, id => Assert.Equal(32, id.Length));
        Assert.Equal(ids.Order(StringComparer.Ordinal), ids);
        var listed = await engine.Store.Customers.ListAsync(limit: 100);
        Assert.Equal(ids, listed.Select(c => c.Id));
    }
}
