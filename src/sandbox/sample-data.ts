/**
 * A small shop schema with rows, a view, a trigger, a procedure and an event: enough to show that a
 * dump carries every kind of object. Uses MariaDB's SEQUENCE engine (seq_1_to_N) to generate rows.
 */
export function sampleDataSql(schema: string, rows: number): string {
  const s = `\`${schema.replace(/`/g, '``')}\``;
  return `
CREATE DATABASE IF NOT EXISTS ${s} CHARACTER SET utf8mb4;
USE ${s};
CREATE TABLE customers (
  id INT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(200) NOT NULL UNIQUE,
  note TEXT,
  created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB;
CREATE TABLE orders (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  customer_id INT NOT NULL,
  total DECIMAL(12,2) NOT NULL,
  payload BLOB,
  placed_at DATETIME(6) NOT NULL,
  KEY (customer_id),
  CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB;
CREATE TABLE audit (id BIGINT PRIMARY KEY AUTO_INCREMENT, what VARCHAR(64) NOT NULL, at DATETIME(6) NOT NULL) ENGINE=InnoDB;
INSERT INTO customers (name, email, note, created_at)
  SELECT CONCAT('Customer ', seq), CONCAT('customer', seq, '@example.com'),
         IF(seq % 7 = 0, CONCAT('héllo "quoted" \\\\ ', seq, ' ünïcode ✓'), NULL),
         TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq MINUTE
  FROM seq_1_to_${rows};
INSERT INTO orders (customer_id, total, payload, placed_at)
  SELECT 1 + (seq % ${rows}), ROUND(seq * 1.37, 2), UNHEX(SHA2(seq, 256)), TIMESTAMP'2026-02-01 00:00:00' + INTERVAL seq SECOND
  FROM seq_1_to_${rows * 3};
CREATE VIEW customer_totals AS
  SELECT c.id, c.name, SUM(o.total) AS total FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.name;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (what, at) VALUES (CONCAT('order ', NEW.id), NOW(6));
CREATE PROCEDURE top_customers(IN n INT) SELECT * FROM customer_totals ORDER BY total DESC LIMIT n;
CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit WHERE at < NOW() - INTERVAL 30 DAY;
`;
}
